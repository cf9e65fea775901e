// Hopper (sm_90a) path of the block-sparse attention backward: the dK/dV and dQ kernels of tile_attention_bwd.cu
// (read its header: same arguments, block tables, range lists and launch grids; its prep kernel writes lse2 and
// delta first) with the matrix work on wgmma.
//   dkdv: one warpgroup per 64 keys of the KV block (BKV = 128: 256 threads; BKV = 64: 128 threads, for blocks
//         of at most 64 keys). K and V stay in shared memory; per query block of BQ = 64 rows (Q, dO, lse2 and
//         delta double-buffered with cp.async by all threads):
//           S^T  = K Q^T    wgmma SS, both K-major        dP^T = V dO^T   wgmma SS
//           P^T  = exp2(S^T · scaleLog2 − lse2[query]),    dS^T = P^T ⊙ (dP^T − delta[query])
//           dV  += P^T dO   wgmma RS (P^T from registers, dO MN-major)     dK += dS^T Q   wgmma RS
//         dK and dV (64 × D each per warpgroup) stay in registers until the end.
//   dq:   one warpgroup per 64 query rows (BM = 128: 256 threads; BM = 64: 128 threads); per KV block of BN = 64
//         keys (K, V double-buffered): S = Q K^T, dP = dO V^T (SS), dS = P ⊙ (dP − delta), dQ += dS K (RS, K
//         MN-major).
//   dkdvq (fused): the dkdv kernel also writes dS^T to shared memory and computes dQ = dS K for its keys (SS, both
//         operands MN-major), added into an fp32 accumulator in L2; dq_convert then writes dq = scale · accumulator.
//         Five block products per (KV block, query step) instead of seven, but the result depends on the order of
//         the reductions (not bitwise reproducible), and the accumulator costs 4 · B · heads · S · D bytes.
//   Without dkdvq no thread block adds into another's output.
// Masking, as the portable kernels: rows past a range's end load as zeros (lse2 = delta = 0 for query rows), keys
// past a block's or range's end get P = 0.
// Launch: grid (blocks, heads, B); dkdv BKV * 2 threads and Sm90BwdKvConfig::SMEM bytes of dynamic shared memory
// ((2 * BKV + 256) * D * 2 + 2048: 133120 at BKV = 128, D = 128), dq BM * 2 threads and
// Sm90BwdQConfig::SMEM ((2 * BM + 256) * D * 2 + 1024: 132096 at BM = 128, D = 128); dkdvq as dkdv with
// Sm90BwdFusedShipped's SMEM (plus BKV * 64 * 2 bytes for dS^T); dq_convert any grid of 256 threads (grid-stride
// over elements / 4). A launch with less shared memory than its config needs traps. Built for every target, but
// the bodies exist only in sm_90a code; elsewhere the entry points trap, and callers pick tile_attention_bwd.cu.
#include "tileattn/common.cuh"
#include "tileattn/tile_attention.cuh"
#include "tileattn/wgmma.cuh"
#include "tileattn/bwd_rows.cuh"

namespace tileattn {

// How the dK/dV kernel treats dQ: not at all (the dq kernel recomputes the scores for it), or added into an fp32
// [B, heads, S, D] accumulator with reductions in L2, from registers (red.global.add.v2.f32) or through a shared
// staging tile (cp.reduce.async.bulk, one row per lane). The accumulator starts at zero and a convert kernel
// scales and rounds it into dq afterwards.
enum Sm90DqMode : int { kDqSeparate = 0, kDqRed = 1, kDqBulk = 2 };

// STAGES: buffers of Q, dO, lse2 and delta (2, or 3 for PIPE). PIPE: a step's dV and dK products retire only once
// the next step's S^T and dP^T are issued (the third buffer keeps the next load off the tiles they read).
// NSPLIT (with a fused dQ, BKV = D = 128): each warpgroup computes half of dQ's columns over all 128 keys, so both
// warpgroups' dS^T must be in shared memory first; otherwise each adds a full-width partial over its own 64 keys.
template <int D_, int BKV_, int STAGES_ = 2, bool PIPE_ = false, int DQ_ = kDqSeparate, bool NSPLIT_ = false>
struct Sm90BwdKvConfig {
    static constexpr int D = D_;
    static constexpr int BKV = BKV_;  // 64 or 128 keys: one warpgroup per 64
    static constexpr int BQ = 64;
    static constexpr int THREADS = 2 * BKV;
    static constexpr int WARPS = THREADS / 32;
    static constexpr int STAGES = STAGES_;
    static constexpr bool PIPE = PIPE_;
    static constexpr int DQ = DQ_;
    static constexpr bool NSPLIT = NSPLIT_;
    static constexpr int DQN = NSPLIT ? D / 2 : D;  // dQ columns per warpgroup
    static constexpr int DQK = NSPLIT ? BKV : 64;   // keys per warpgroup's dQ product
    static constexpr int KV_ELEMS = BKV * D;
    static constexpr int Q_ELEMS = BQ * D;
    static constexpr int DS_ELEMS = DQ != kDqSeparate ? BKV * BQ : 0;
    static constexpr int PITCH = DQN + 4;  // floats per staged dQ row: 16 bytes of padding keep the stores 2-way
    static constexpr int STAGE_FLOATS = DQ == kDqBulk ? WARPS * 16 * PITCH : 0;
    // K, V; STAGES of Q and dO; dS^T; STAGES of lse2 and delta; the dQ staging rows; 1 KiB to align the tiles.
    static constexpr int SMEM = (2 * KV_ELEMS + 2 * STAGES * Q_ELEMS + DS_ELEMS) * 2 + 2 * STAGES * BQ * 4 +
                                STAGE_FLOATS * 4 + 1024;
    static_assert(2 * BQ <= THREADS, "one thread per row loads lse2 and delta");
    static_assert(STAGES == 2 || STAGES == 3, "two or three stages");
    static_assert(!PIPE || (STAGES == 3 && DQ == kDqSeparate), "PIPE needs a third stage and no fused dQ");
    static_assert(!NSPLIT || (BKV == 128 && D == 128 && DQ != kDqSeparate), "NSPLIT: two 64-column halves of dQ");
};

template <int D_, int BM_, int BN_ = 64, int STAGES_ = 2, bool PIPE_ = false>
struct Sm90BwdQConfig {
    static constexpr int D = D_;
    static constexpr int BM = BM_;  // 64 or 128 query rows: one warpgroup per 64
    static constexpr int BN = BN_;  // keys per step: 64 or 128 (the wgmma N of S and dP)
    static constexpr int THREADS = 2 * BM;
    static constexpr int STAGES = STAGES_;  // K and V buffers
    static constexpr bool PIPE = PIPE_;     // a step's dQ product retires once the next S and dP are issued
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int SMEM = (2 * Q_ELEMS + 2 * STAGES * KV_ELEMS) * 2 + 1024;  // Q, dO; STAGES of K and of V
    static_assert(STAGES == 2 || STAGES == 3, "two or three stages");
    static_assert(!PIPE || STAGES == 3, "PIPE needs a third stage");
};

// cp.async writes go through the generic proxy and wgmma reads through the async proxy: each thread waits for
// its copies and fences before the barrier that publishes them.
__device__ __forceinline__ void bwd90_publish_copies() {
    cp_async_wait<0>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
}

// Launches give the dynamic shared memory their callers compute (Java mirrors the configs' SMEM): a launch with
// less would let the tiles overlap silently, so the kernels trap instead.
__device__ __forceinline__ void bwd90_check_smem(unsigned need) {
    unsigned have;
    asm("mov.u32 %0, %%dynamic_smem_size;\n" : "=r"(have));
    if (have < need) __trap();
}

__device__ __forceinline__ void bwd90_fence_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void bwd90_named_barrier(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Two adjacent fp32 values added into global memory in L2 (sm_90: vector reductions).
__device__ __forceinline__ void bwd90_red_add2(float* p, float a, float b) {
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(p), "f"(a), "f"(b) : "memory");
}

// A shared row of bytes (multiple of 16, 16-byte aligned at both ends) added into global fp32 by the copy engine.
__device__ __forceinline__ void bwd90_bulk_add(float* dst, const float* src, int bytes) {
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n" ::"l"(dst),
                 "r"(smem_addr(src)), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void bwd90_bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Until this thread's bulk reductions have read their shared rows (the rows may be rewritten) ...
__device__ __forceinline__ void bwd90_bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
// ... or have completed in global memory.
__device__ __forceinline__ void bwd90_bulk_wait() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_bwd_sm90_dkdv(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                             const T* __restrict__ dO, const float* __restrict__ lse2, const float* __restrict__ delta,
                             T* __restrict__ dk, T* __restrict__ dv, const float* __restrict__ dkAdd,
                             const float* __restrict__ dvAdd, float* __restrict__ dqAcc,
                             const int4* __restrict__ kvBlocks, const int* __restrict__ listOf,
                             const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads,
                             int S, float scaleLog2, float scale) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int D = C::D, BQ = C::BQ, BKV = C::BKV, THREADS = C::THREADS, STAGES = C::STAGES;
    constexpr int NQ = BQ / 8, DT = D / 8;
    constexpr bool FUSED = C::DQ != kDqSeparate;
    using KvLayout = Swizzle128<BKV>;
    using QLayout = Swizzle128<BQ>;
    using State = RowState<NQ, DT>;
    bwd90_check_smem(C::SMEM);

    extern __shared__ unsigned char smemRaw[];
    T* sK = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    T* sV = sK + C::KV_ELEMS;
    T* sQ = sV + C::KV_ELEMS;           // [STAGES][BQ*D]
    T* sdO = sQ + STAGES * C::Q_ELEMS;  // [STAGES][BQ*D]
    T* sDS = sdO + STAGES * C::Q_ELEMS;  // [BKV keys][BQ queries], 128-byte swizzled rows (fused dQ only)
    float* sL = reinterpret_cast<float*>(sDS + C::DS_ELEMS);  // [STAGES][BQ]
    float* sDelta = sL + STAGES * BQ;                         // [STAGES][BQ]
    float* sStage = sDelta + STAGES * BQ;                     // [WARPS][16][PITCH] (bulk dQ only)

    const int tid = threadIdx.x, lane = tid & 31, warpRow = (tid >> 5) * 16;
    const int wg = tid >> 7, groupRow = wg * 64;  // this warpgroup and its first key
    const int4 kb = kvBlocks[blockIdx.x];
    const int head = blockIdx.y, batch = blockIdx.z;
    const int list = listOf[head * slots + kb.z];
    const int rEnd = rangeOffsets[list + 1];
    const size_t slice = static_cast<size_t>(batch) * heads + head;
    const size_t headOffset = slice * S * D;
    const T* qh = q + headOffset;
    const T* dOh = dO + headOffset;
    const float* l2h = lse2 + slice * S;
    const float* dh = delta + slice * S;

    load_rows<BKV, D, THREADS, KvLayout>(sK, k + headOffset, kb.x, kb.x + kb.y, tid);
    load_rows<BKV, D, THREADS, KvLayout>(sV, v + headOffset, kb.x, kb.x + kb.y, tid);
    auto loadStage = [&](int stage, const KvCursor& c) {
        load_rows<BQ, D, THREADS, QLayout>(sQ + stage * C::Q_ELEMS, qh, c.kb, c.end, tid);
        load_rows<BQ, D, THREADS, QLayout>(sdO + stage * C::Q_ELEMS, dOh, c.kb, c.end, tid);
        if (tid < 2 * BQ) {
            const int i = tid % BQ, row = c.kb + i;
            const bool real = row < c.end;
            const float* src = (tid < BQ ? l2h : dh) + (real ? row : c.kb);
            cp_async4(smem_addr((tid < BQ ? sL : sDelta) + stage * BQ + i), src, real ? 4 : 0);
        }
    };
    KvCursor cur;
    cur.start(ranges, rangeOffsets[list], rEnd);
    if (cur.valid(rEnd)) loadStage(0, cur);
    cp_async_commit();

    // dK and dV start with the first step's products (scale-d = 0): zeroing them before the loop would be an
    // ordinary write into registers that wgmma keeps in flight across iterations (PIPE), and ptxas would then
    // serialize every wgmma of the loop (C7515).
    float dkAcc[DT][4], dvAcc[DT][4];
    const bool keyLo = warpRow + (lane >> 2) < kb.y, keyHi = warpRow + (lane >> 2) + 8 < kb.y;

    int st = 0;  // stage of step j
    int j = 0;
    for (; cur.valid(rEnd); ++j) {
        KvCursor next = cur;
        next.template advance<BQ>(ranges, rEnd);
        // Stage j landed; every warpgroup is done with step j-1's thread reads and (STAGES = 2 or without PIPE:
        // all) products; with PIPE, the products of step j-2, the last to read the buffer loaded now.
        bwd90_publish_copies();
        const int nst = st + 1 == STAGES ? 0 : st + 1;
        if (next.valid(rEnd)) loadStage(nst, next);
        cp_async_commit();
        const T* sQs = sQ + st * C::Q_ELEMS;
        const T* sdOs = sdO + st * C::Q_ELEMS;
        const float* sLs = sL + st * BQ;
        const float* sDeltaS = sDelta + st * BQ;

        // S^T = K Q^T and dP^T = V dO^T, two commit groups; k16 step kk lies inside one 128-byte swizzle row.
        float s[NQ][4], dp[NQ][4];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
            wgmma_ss_k<T, BQ>(s, smem_desc(sK + (kk >> 2) * BKV * 64 + groupRow * 64 + (kk & 3) * 16, 16, 1024),
                              smem_desc(sQs + (kk >> 2) * BQ * 64 + (kk & 3) * 16, 16, 1024), kk);
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
            wgmma_ss_k<T, BQ>(dp, smem_desc(sV + (kk >> 2) * BKV * 64 + groupRow * 64 + (kk & 3) * 16, 16, 1024),
                              smem_desc(sdOs + (kk >> 2) * BQ * 64 + (kk & 3) * 16, 16, 1024), kk);
        wgmma_commit();

        // P^T while dP^T runs (with PIPE this wait also retires step j-1's dV and dK); keys past the block's end
        // get 0.
        wgmma_wait<1>();
        pin(s);
#pragma unroll
        for (int nt = 0; nt < NQ; ++nt) {
            const float2 l = *reinterpret_cast<const float2*>(sLs + nt * 8 + 2 * (lane & 3));
            s[nt][0] = keyLo ? fast_exp2(fmaf(s[nt][0], scaleLog2, -l.x)) : 0.f;
            s[nt][1] = keyLo ? fast_exp2(fmaf(s[nt][1], scaleLog2, -l.y)) : 0.f;
            s[nt][2] = keyHi ? fast_exp2(fmaf(s[nt][2], scaleLog2, -l.x)) : 0.f;
            s[nt][3] = keyHi ? fast_exp2(fmaf(s[nt][3], scaleLog2, -l.y)) : 0.f;
        }

        // dV += P^T dO: k16 step ks covers queries 16ks .. 16ks+15 (two 1 KiB swizzle atoms of dO).
        uint32_t pa[BQ / 16][4];
#pragma unroll
        for (int ks = 0; ks < BQ / 16; ++ks) State::template probabilities<T>(s, ks, pa[ks]);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BQ / 16; ++ks) wgmma_rs<T, D>(dvAcc, pa[ks], smem_desc(sdOs + ks * 16 * 64, BQ * 128, 1024),
                                                   j > 0 || ks > 0);
        wgmma_commit();

        // dS^T = P^T ⊙ (dP^T − delta) while dV runs, then dK += dS^T Q (scaled at the store).
        wgmma_wait<1>();
        pin(dp);
#pragma unroll
        for (int nt = 0; nt < NQ; ++nt) {
            const float2 dl = *reinterpret_cast<const float2*>(sDeltaS + nt * 8 + 2 * (lane & 3));
            dp[nt][0] = s[nt][0] * (dp[nt][0] - dl.x);
            dp[nt][1] = s[nt][1] * (dp[nt][1] - dl.y);
            dp[nt][2] = s[nt][2] * (dp[nt][2] - dl.x);
            dp[nt][3] = s[nt][3] * (dp[nt][3] - dl.y);
        }
        uint32_t da[BQ / 16][4];
#pragma unroll
        for (int ks = 0; ks < BQ / 16; ++ks) State::template probabilities<T>(dp, ks, da[ks]);
        if constexpr (FUSED) {
            // dS^T as rounded for dK, one key per row: the MN-major A operand of dQ = dS K. Written before the dK
            // product is issued, which then owns da's registers until it retires.
            const int r = warpRow + (lane >> 2);
#pragma unroll
            for (int ks = 0; ks < BQ / 16; ++ks) {
                *reinterpret_cast<uint32_t*>(sDS + KvLayout::offset(r, 2 * ks) + 2 * (lane & 3)) = da[ks][0];
                *reinterpret_cast<uint32_t*>(sDS + KvLayout::offset(r + 8, 2 * ks) + 2 * (lane & 3)) = da[ks][1];
                *reinterpret_cast<uint32_t*>(sDS + KvLayout::offset(r, 2 * ks + 1) + 2 * (lane & 3)) = da[ks][2];
                *reinterpret_cast<uint32_t*>(sDS + KvLayout::offset(r + 8, 2 * ks + 1) + 2 * (lane & 3)) = da[ks][3];
            }
        }
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BQ / 16; ++ks) wgmma_rs<T, D>(dkAcc, da[ks], smem_desc(sQs + ks * 16 * 64, BQ * 128, 1024),
                                                   j > 0 || ks > 0);
        wgmma_commit();

        if constexpr (FUSED) {
            // dQ[64 queries, DQN columns] = dS K over DQK keys: A = dS^T rows (MN-major), B = K rows (MN-major).
            bwd90_fence_async();
            if constexpr (C::NSPLIT) {
                bwd90_named_barrier(1, THREADS);  // both warpgroups' dS^T
            } else {
                bwd90_named_barrier(1 + wg, 128);  // this warpgroup's dS^T
                wgmma_wait<0>();                   // dV and dK retire: their registers make room for dQ's
                pin(dvAcc);
                pin(dkAcc);
            }
            const int key0 = C::NSPLIT ? 0 : groupRow;
            const T* sKq = sK + (C::NSPLIT ? wg * BKV * 64 : 0);
            float dqp[C::DQN / 8][4];
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < C::DQK / 16; ++ks)
                wgmma_ss_k<T, C::DQN, 1, 1>(dqp, smem_desc(sDS + (key0 + ks * 16) * 64, BKV * 128, 1024),
                                            smem_desc(sKq + (key0 + ks * 16) * 64, BKV * 128, 1024), ks);
            wgmma_commit();
            wgmma_wait<0>();
            pin(dqp);
            pin(dvAcc);
            pin(dkAcc);

            // Rows of this warp: queries 16 * (warp in group) + lane / 4 (+ 8); rows past the range's end (their dS
            // is 0) are left alone, so no row outside [0, S) is touched.
            const int qLocal = ((tid >> 5) & 3) * 16;
            const int col0 = C::NSPLIT ? wg * C::DQN : 0;
            float* dqh = dqAcc + headOffset;
            if constexpr (C::DQ == kDqRed) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = cur.kb + qLocal + (lane >> 2) + 8 * h;
                    if (row < cur.end) {
                        float* dst = dqh + static_cast<size_t>(row) * D + col0 + 2 * (lane & 3);
#pragma unroll
                        for (int jn = 0; jn < C::DQN / 8; ++jn) bwd90_red_add2(dst + 8 * jn, dqp[jn][2 * h], dqp[jn][2 * h + 1]);
                    }
                }
            } else {
                float* stage = sStage + (tid >> 5) * 16 * C::PITCH;  // this warp's 16 rows
                if (lane < 16) bwd90_bulk_wait_read();  // the previous step's rows have been read
                __syncwarp();
#pragma unroll
                for (int h = 0; h < 2; ++h)
#pragma unroll
                    for (int jn = 0; jn < C::DQN / 8; ++jn)
                        *reinterpret_cast<float2*>(stage + ((lane >> 2) + 8 * h) * C::PITCH + 8 * jn + 2 * (lane & 3)) =
                            make_float2(dqp[jn][2 * h], dqp[jn][2 * h + 1]);
                bwd90_fence_async();
                __syncwarp();
                if (lane < 16) {
                    const int row = cur.kb + qLocal + lane;
                    if (row < cur.end) bwd90_bulk_add(dqh + static_cast<size_t>(row) * D + col0, stage + lane * C::PITCH, C::DQN * 4);
                    bwd90_bulk_commit();
                }
            }
        } else if constexpr (!C::PIPE) {
            wgmma_wait<0>();
            pin(dvAcc);
            pin(dkAcc);
        }
        cur = next;
        st = nst;
    }
    wgmma_wait<0>();  // PIPE: the last step's dV and dK
    pin(dvAcc);
    pin(dkAcc);
    if (j == 0) {  // no query reads this block
#pragma unroll
        for (int dt = 0; dt < DT; ++dt)
#pragma unroll
            for (int e = 0; e < 4; ++e) dkAcc[dt][e] = dvAcc[dt][e] = 0.f;
    }
    cp_async_wait<0>();  // an empty list leaves K and V copies in flight
    if constexpr (C::DQ == kDqBulk) {
        if (lane < 16) bwd90_bulk_wait();
    }

    store_rows<T, DT>(dk + headOffset, dkAcc, scale, slot_row(dkAdd, slice, slots, kb.z, D), warpRow, kb.x, kb.y, lane);
    store_rows<T, DT>(dv + headOffset, dvAcc, 1.f, slot_row(dvAdd, slice, slots, kb.z, D), warpRow, kb.x, kb.y, lane);
#else
    __trap();  // sm_90a only: callers pick tile_attention_bwd.cu elsewhere
#endif
}

template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_bwd_sm90_dq(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                           const T* __restrict__ dO, const float* __restrict__ lse2, const float* __restrict__ delta,
                           T* __restrict__ dq, const float* __restrict__ dqAdd, const int4* __restrict__ qBlocks,
                           const int* __restrict__ listOf,
                           const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads,
                           int S, float scaleLog2, float scale) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int D = C::D, BN = C::BN, BM = C::BM, THREADS = C::THREADS, STAGES = C::STAGES;
    constexpr int NT = BN / 8, DT = D / 8;
    using QLayout = Swizzle128<BM>;
    using KvLayout = Swizzle128<BN>;
    using State = RowState<NT, DT>;
    bwd90_check_smem(C::SMEM);

    extern __shared__ unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    T* sdO = sQ + C::Q_ELEMS;
    T* sK = sdO + C::Q_ELEMS;           // [STAGES][BN*D]
    T* sV = sK + STAGES * C::KV_ELEMS;  // [STAGES][BN*D]

    const int tid = threadIdx.x, lane = tid & 31, warpRow = (tid >> 5) * 16;
    const int groupRow = (tid >> 7) * 64;  // first query row of this warpgroup
    const BlockWork work = block_work(qBlocks, listOf, rangeOffsets, slots, heads, S, D, nullptr);
    const int rEnd = work.rangeEnd;
    const T* kh = k + work.headOffset;
    const T* vh = v + work.headOffset;
    const size_t rowBase = work.headOffset / D;

    float rowL[2], rowD[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int local = warpRow + (lane >> 2) + 8 * h;
        const bool real = local < work.rowCount;
        rowL[h] = real ? lse2[rowBase + work.rowStart + local] : 0.f;
        rowD[h] = real ? delta[rowBase + work.rowStart + local] : 0.f;
    }

    KvCursor cur;
    cur.start(ranges, work.rangeBegin, rEnd);
    load_rows<BM, D, THREADS, QLayout>(sQ, q + work.headOffset, work.rowStart, work.rowStart + work.rowCount, tid);
    load_rows<BM, D, THREADS, QLayout>(sdO, dO + work.headOffset, work.rowStart, work.rowStart + work.rowCount, tid);
    if (cur.valid(rEnd)) {
        load_rows<BN, D, THREADS, KvLayout>(sK, kh, cur.kb, cur.end, tid);
        load_rows<BN, D, THREADS, KvLayout>(sV, vh, cur.kb, cur.end, tid);
    }
    cp_async_commit();

    float acc[DT][4];  // starts with the first step's product (see the dK/dV kernel)
    int st = 0;        // stage of step j
    int j = 0;
    for (; cur.valid(rEnd); ++j) {
        KvCursor next = cur;
        next.template advance<BN>(ranges, rEnd);
        bwd90_publish_copies();  // stage j landed; every warpgroup is done with the products that read the next buffer
        const int nst = st + 1 == STAGES ? 0 : st + 1;
        if (next.valid(rEnd)) {
            load_rows<BN, D, THREADS, KvLayout>(sK + nst * C::KV_ELEMS, kh, next.kb, next.end, tid);
            load_rows<BN, D, THREADS, KvLayout>(sV + nst * C::KV_ELEMS, vh, next.kb, next.end, tid);
        }
        cp_async_commit();
        const T* sKs = sK + st * C::KV_ELEMS;
        const T* sVs = sV + st * C::KV_ELEMS;

        float s[NT][4], dp[NT][4];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
            wgmma_ss_k<T, BN>(s, smem_desc(sQ + (kk >> 2) * BM * 64 + groupRow * 64 + (kk & 3) * 16, 16, 1024),
                              smem_desc(sKs + (kk >> 2) * BN * 64 + (kk & 3) * 16, 16, 1024), kk);
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
            wgmma_ss_k<T, BN>(dp, smem_desc(sdO + (kk >> 2) * BM * 64 + groupRow * 64 + (kk & 3) * 16, 16, 1024),
                              smem_desc(sVs + (kk >> 2) * BN * 64 + (kk & 3) * 16, 16, 1024), kk);
        wgmma_commit();

        // P while dP runs (with PIPE this wait also retires step j-1's dQ); keys past the range's end get -inf, so
        // P = 0 (and their V rows are zeros: dP = 0).
        wgmma_wait<1>();
        pin(s);
        State::mask(s, cur.kb, cur.end, lane);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt][e] = fast_exp2(fmaf(s[nt][e], scaleLog2, -rowL[e >> 1]));
        wgmma_wait<0>();
        pin(dp);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) dp[nt][e] = s[nt][e] * (dp[nt][e] - rowD[e >> 1]);

        // dQ += dS K: k16 step ks covers keys 16ks .. 16ks+15; K read MN-major (scaled at the store).
        uint32_t a[BN / 16][4];
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) State::template probabilities<T>(dp, ks, a[ks]);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) wgmma_rs<T, D>(acc, a[ks], smem_desc(sKs + ks * 16 * 64, BN * 128, 1024), j > 0 || ks > 0);
        wgmma_commit();
        if constexpr (!C::PIPE) {
            wgmma_wait<0>();
            pin(acc);
        }
        cur = next;
        st = nst;
    }
    wgmma_wait<0>();  // PIPE: the last step's dQ
    pin(acc);
    if (j == 0) {  // an empty list
#pragma unroll
        for (int dt = 0; dt < DT; ++dt)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[dt][e] = 0.f;
    }
    cp_async_wait<0>();  // an empty list leaves the Q and dO copies in flight

    store_rows<T, DT>(dq + work.headOffset, acc, scale, slot_row(dqAdd, work.slice, slots, qBlocks[blockIdx.x].z, D),
                      warpRow, work.rowStart, work.rowCount, lane);
#else
    __trap();  // sm_90a only: callers pick tile_attention_bwd.cu elsewhere
#endif
}

// dq = scale · the fused dK/dV kernel's fp32 accumulator, rounded once; n4 = elements / 4 (grid-stride).
template <typename T>
__device__ __forceinline__ void tile_attention_bwd_sm90_dq_convert(const float* __restrict__ acc, T* __restrict__ dq,
                                                                   long long n4, float scale) {
    for (long long i = global_thread_index(); i < n4; i += global_thread_count()) {
        const float4 x = reinterpret_cast<const float4*>(acc)[i];
        reinterpret_cast<uint2*>(dq)[i] = make_uint2(pack2<T>(x.x * scale, x.y * scale), pack2<T>(x.z * scale, x.w * scale));
    }
}

// The same bodies as template kernels, for the standalone checker's configuration sweeps.
template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 256 / C::THREADS)
tile_attention_bwd_sm90_dkdv_kernel(const T* q, const T* k, const T* v, const T* dO, const float* lse2,
                                    const float* delta, T* dk, T* dv, float* dqAcc, const int4* kvBlocks,
                                    const int* listOf, const int* rangeOffsets, const int2* ranges, int slots, int heads,
                                    int S, float scaleLog2, float scale) {
    tile_attention_bwd_sm90_dkdv<T, C>(q, k, v, dO, lse2, delta, dk, dv, nullptr, nullptr, dqAcc, kvBlocks, listOf,
                                       rangeOffsets, ranges, slots, heads, S, scaleLog2, scale);
}

template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 256 / C::THREADS)
tile_attention_bwd_sm90_dq_kernel(const T* q, const T* k, const T* v, const T* dO, const float* lse2,
                                  const float* delta, T* dq, const int4* qBlocks, const int* listOf,
                                  const int* rangeOffsets, const int2* ranges, int slots, int heads, int S,
                                  float scaleLog2, float scale) {
    tile_attention_bwd_sm90_dq<T, C>(q, k, v, dO, lse2, delta, dq, nullptr, qBlocks, listOf, rangeOffsets, ranges,
                                     slots, heads, S, scaleLog2, scale);
}

template <typename T>
__global__ void __launch_bounds__(256) tile_attention_bwd_sm90_dq_convert_kernel(const float* acc, T* dq, long long n4,
                                                                                  float scale) {
    tile_attention_bwd_sm90_dq_convert<T>(acc, dq, n4, scale);
}

}  // namespace tileattn
// ROWS = 128: blocks of at most 128 keys / query rows, 256 threads (the portable kernels' tables). ROWS = 64
// (the _r64 entries): blocks of at most 64, 128 threads, two thread blocks per SM.
// At 128 rows the entries use the checker's sm90_pipe128 (three-stage pipelined dK/dV, dQ over 128-key steps): 3.9%
// faster than the two-stage pair at HunyuanVideo STA on an H100 (docs/benchmarks-bwd.md). Java's
// TileAttentionBackwardKernel.KernelShape mirrors these configurations' shared-memory sizes.
namespace tileattn {
template <int D, int ROWS>
using Sm90BwdKvEntry = Sm90BwdKvConfig<D, ROWS, ROWS == 128 ? 3 : 2, ROWS == 128>;
template <int D, int ROWS>
using Sm90BwdQEntry = Sm90BwdQConfig<D, ROWS, ROWS == 128 ? 128 : 64>;
}  // namespace tileattn
#define TILEATTN_BWD_SM90_ENTRIES(SUFFIX, T, D, ROWS)                                                              \
    extern "C" __global__ void __launch_bounds__(2 * ROWS, 256 / (2 * ROWS))                                      \
    tileattn_tile_attention_bwd_sm90_dkdv_##SUFFIX(const T* q, const T* k, const T* v, const T* dO,               \
                                                   const float* lse2, const float* delta, T* dk, T* dv,           \
                                                   const float* dkAdd, const float* dvAdd,                        \
                                                   const int4* kvBlocks, const int* listOf,                       \
                                                   const int* rangeOffsets, const int2* ranges, int slots,        \
                                                   int heads, int S, float scaleLog2, float scale) {              \
        tileattn::tile_attention_bwd_sm90_dkdv<T, tileattn::Sm90BwdKvEntry<D, ROWS>>(                              \
            q, k, v, dO, lse2, delta, dk, dv, dkAdd, dvAdd, nullptr, kvBlocks, listOf, rangeOffsets, ranges,       \
            slots, heads, S, scaleLog2, scale);                                                                    \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(2 * ROWS, 256 / (2 * ROWS))                                      \
    tileattn_tile_attention_bwd_sm90_dq_##SUFFIX(const T* q, const T* k, const T* v, const T* dO,                 \
                                                 const float* lse2, const float* delta, T* dq,                    \
                                                 const float* dqAdd, const int4* qBlocks, const int* listOf,      \
                                                 const int* rangeOffsets, const int2* ranges, int slots,          \
                                                 int heads, int S, float scaleLog2, float scale) {                \
        tileattn::tile_attention_bwd_sm90_dq<T, tileattn::Sm90BwdQEntry<D, ROWS>>(                                 \
            q, k, v, dO, lse2, delta, dq, dqAdd, qBlocks, listOf, rangeOffsets, ranges, slots, heads, S,           \
            scaleLog2, scale);                                                                                     \
    }

// The fused dK/dV/dQ entry points (dkdvq: dQ added into an fp32 accumulator that starts at zero, then scaled and
// rounded by dq_convert): the checker's sm90_fn at 128 rows (sm90_fk at d = 64), sm90_r64f at 64. Java's
// TileAttentionBackwardKernel.KernelShape mirrors this configuration's shared-memory size.
namespace tileattn {
template <int D, int ROWS>
using Sm90BwdFusedShipped = Sm90BwdKvConfig<D, ROWS, 2, false, kDqRed, ROWS == 128 && D == 128>;
}

#define TILEATTN_BWD_SM90_FUSED_ENTRIES(SUFFIX, T, D, ROWS)                                                        \
    extern "C" __global__ void __launch_bounds__(2 * ROWS, 256 / (2 * ROWS))                                      \
    tileattn_tile_attention_bwd_sm90_dkdvq_##SUFFIX(const T* q, const T* k, const T* v, const T* dO,              \
                                                    const float* lse2, const float* delta, T* dk, T* dv,          \
                                                    float* dqAcc, const int4* kvBlocks, const int* listOf,        \
                                                    const int* rangeOffsets, const int2* ranges, int slots,       \
                                                    int heads, int S, float scaleLog2, float scale) {             \
        tileattn::tile_attention_bwd_sm90_dkdv<T, tileattn::Sm90BwdFusedShipped<D, ROWS>>(                         \
            q, k, v, dO, lse2, delta, dk, dv, nullptr, nullptr, dqAcc, kvBlocks, listOf, rangeOffsets, ranges,     \
            slots, heads, S, scaleLog2, scale);                                                                    \
    }

#ifndef TILEATTN_BWD_SM90_NO_ENTRY_POINTS
TILEATTN_BWD_SM90_ENTRIES(bf16_d64, __nv_bfloat16, 64, 128)
TILEATTN_BWD_SM90_ENTRIES(bf16_d128, __nv_bfloat16, 128, 128)
TILEATTN_BWD_SM90_ENTRIES(f16_d64, __half, 64, 128)
TILEATTN_BWD_SM90_ENTRIES(f16_d128, __half, 128, 128)
TILEATTN_BWD_SM90_ENTRIES(r64_bf16_d64, __nv_bfloat16, 64, 64)
TILEATTN_BWD_SM90_ENTRIES(r64_bf16_d128, __nv_bfloat16, 128, 64)
TILEATTN_BWD_SM90_ENTRIES(r64_f16_d64, __half, 64, 64)
TILEATTN_BWD_SM90_ENTRIES(r64_f16_d128, __half, 128, 64)
TILEATTN_BWD_SM90_FUSED_ENTRIES(bf16_d64, __nv_bfloat16, 64, 128)
TILEATTN_BWD_SM90_FUSED_ENTRIES(bf16_d128, __nv_bfloat16, 128, 128)
TILEATTN_BWD_SM90_FUSED_ENTRIES(f16_d64, __half, 64, 128)
TILEATTN_BWD_SM90_FUSED_ENTRIES(f16_d128, __half, 128, 128)
TILEATTN_BWD_SM90_FUSED_ENTRIES(r64_bf16_d64, __nv_bfloat16, 64, 64)
TILEATTN_BWD_SM90_FUSED_ENTRIES(r64_bf16_d128, __nv_bfloat16, 128, 64)
TILEATTN_BWD_SM90_FUSED_ENTRIES(r64_f16_d64, __half, 64, 64)
TILEATTN_BWD_SM90_FUSED_ENTRIES(r64_f16_d128, __half, 128, 64)
extern "C" __global__ void __launch_bounds__(256)
tileattn_tile_attention_bwd_sm90_dq_convert_bf16(const float* acc, __nv_bfloat16* dq, long long n4, float scale) {
    tileattn::tile_attention_bwd_sm90_dq_convert<__nv_bfloat16>(acc, dq, n4, scale);
}
extern "C" __global__ void __launch_bounds__(256)
tileattn_tile_attention_bwd_sm90_dq_convert_f16(const float* acc, __half* dq, long long n4, float scale) {
    tileattn::tile_attention_bwd_sm90_dq_convert<__half>(acc, dq, n4, scale);
}
#endif
