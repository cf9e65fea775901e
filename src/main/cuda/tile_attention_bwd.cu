// Block-sparse attention backward over tile-ordered tokens (STA, dense, or any mask written as token-range
// lists), the gradient of tile_attention.cu's forward. Portable path (sm_80 and newer): mma.sync m16n8k16,
// ldmatrix, cp.async double buffering; fp32 accumulation. Probabilities are recomputed from the forward's
// log-sum-exp, never stored.
//
// Three launches, in order, on one stream:
//   1. prep:  delta[r] = rowsum(dO[r] ⊙ o[r]) and lse2[r] = lse[r] · log2(e), fp32, for every row r.
//   2. dkdv:  one thread block per KV block of at most BKV = 128 keys (never crossing a KV tile); it walks the
//             query rows that attend the block, BQ at a time, through the block's list of QUERY token ranges
//             (the transpose of the forward's lists), and writes dk and dv of its keys.
//   3. dq:    one thread block per query block of at most 128 rows, over the forward's KV ranges; writes dq.
//   Both kernels also come in 64-row variants (entry points ..._bm64_..., 4 warps): blocks never cross a tile, so
//   on tiles of at most 64 tokens (VSA's 4x4x4) a 128-row block would compute as many empty rows as real ones.
//   dK/dV and dQ each recompute the scores, so no thread block ever adds into another's output: no atomics,
//   the result does not depend on scheduling. This costs three more matrix products per block pair than adding
//   dq from the dK/dV kernel with fp32 atomics, and was still 9-10% faster on an H100 (docs/benchmarks-bwd.md).
//
// ABI (all tensors contiguous, device pointers):
//   q, k, v, o, dO, dq, dk, dv  [B, heads, S, D] of T (bf16 or fp16). Gradients come out in T, rounded once
//                from their fp32 accumulators.
//   dkAdd, dvAdd, dqAdd  (after dk, dv and after dq) float [B, heads, slots, D] or null: row (batch, head, slot) is
//                added to every gradient row of the blocks of that slot as they are stored (VSA: the coarse branch's
//                share of each token of the tile).
//   lse          [B, heads, S] float, natural log, as the forward wrote it; delta, lse2: [B, heads, S] float
//                scratch written by prep.
//   blocks       int4 {rowStart, rowCount, slot, unused} per block, rowCount in [1, 128] ([1, 64] for the bm64
//                entry points): KV blocks for dkdv, query blocks for dq (the forward's table, or the same lists
//                with 64-row blocks).
//   listOf       int [heads * slots]; rangeOffsets int [lists + 1]; ranges int2 {start, end}, end > start:
//                query ranges for dkdv, KV ranges for dq. An empty list gives zero gradients.
//   scaleLog2 = scale · log2(e), scale > 0: scores are scaled in fp32 after QK^T.
// Launch: prep any grid of 256 threads (grid-stride); dkdv and dq grid (blocks, heads, B), 256 threads, dynamic
// shared memory dkdv 1024·D + 1024 bytes, dq 1024·D bytes (both above 48 KiB: raise the functions' limits first).
// bm64 entry points: 128 threads, dkdv 768·D + 1024 bytes, dq 768·D bytes (two blocks per SM on sm_90).
#include "tileattn/common.cuh"
#include "tileattn/mma_sync.cuh"
#include "tileattn/tile_attention.cuh"
#include "tileattn/bwd_rows.cuh"

namespace tileattn {

constexpr float kLog2e = 1.4426950408889634f;

template <typename T> __device__ __forceinline__ float2 unpack2(uint32_t x);
template <> __device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t x) {
    return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&x));
}
template <> __device__ __forceinline__ float2 unpack2<__half>(uint32_t x) {
    return __half22float2(*reinterpret_cast<const __half2*>(&x));
}

// ---- 1. prep: D/8 threads per row, one 16-byte chunk of o and of dO each ----
template <typename T, int D>
__device__ __forceinline__ void bwd_prep(const T* __restrict__ o, const T* __restrict__ dO, const float* __restrict__ lse,
                                         float* __restrict__ delta, float* __restrict__ lse2, long long rows) {
    constexpr int CH = D / 8;
    const long long total = rows * CH;
    const int lane = threadIdx.x & 31;
    // The loop test uses the warp's first index so that whole warps iterate together through the shuffles.
    for (long long i = global_thread_index(); i - lane < total; i += global_thread_count()) {
        float s = 0.f;
        if (i < total) {
            const uint4 a = *reinterpret_cast<const uint4*>(o + i * 8);
            const uint4 b = *reinterpret_cast<const uint4*>(dO + i * 8);
            const uint32_t aw[4] = {a.x, a.y, a.z, a.w}, bw[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float2 x = unpack2<T>(aw[e]), y = unpack2<T>(bw[e]);
                s = fmaf(x.x, y.x, fmaf(x.y, y.y, s));
            }
        }
#pragma unroll
        for (int m = CH / 2; m >= 1; m >>= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
        if (i < total && i % CH == 0) {
            const long long r = i / CH;
            delta[r] = s;
            lse2[r] = lse[r] * kLog2e;
        }
    }
}

// load_rows of two matrices (Q and dO) in a loop that is not unrolled: with 4 warps each thread copies twice the
// chunks, and an unrolled copy keeps their addresses live across the whole query loop (register spills).
template <int ROWS, int D, int THREADS, typename Layout, typename T>
__device__ __forceinline__ void load_rows_rolled(T* tileA, T* tileB, const T* srcA, const T* srcB, int row0,
                                                 int rowLimit, int tid) {
    constexpr int CHUNKS = D / 8;
    constexpr int TOTAL = ROWS * CHUNKS;
    static_assert(TOTAL % THREADS == 0, "tile chunks must divide evenly among threads");
#pragma unroll 1
    for (int i = tid; i < TOTAL; i += THREADS) {
        const int r = i / CHUNKS, c = i % CHUNKS;
        const bool real = row0 + r < rowLimit;
        const size_t g = static_cast<size_t>(real ? row0 + r : row0) * D + c * 8;
        const int o = Layout::offset(r, c);
        cp_async16(smem_addr(tileA + o), srcA + g, real ? 16 : 0);
        cp_async16(smem_addr(tileB + o), srcB + g, real ? 16 : 0);
    }
}

// ---- 2. dK, dV ----
template <int D_, int BQ_, int NWARPS_ = 8>
struct BwdKvConfig {
    static constexpr int D = D_;
    static constexpr int BQ = BQ_;
    static constexpr int NWARPS = NWARPS_;
    // 8 warps: one block per SM (its registers); 4 warps (BKV = 64): two, at the same 255-register budget.
    static constexpr int MIN_BLOCKS = NWARPS == 8 ? 1 : 2;
    static constexpr int THREADS = NWARPS * 32;
    static constexpr int BKV = NWARPS * 16;
    static constexpr int KV_ELEMS = BKV * D;
    static constexpr int Q_ELEMS = BQ * D;
    // K, V; two stages of Q and dO; two stages of lse2 and delta.
    static constexpr int SMEM = (2 * KV_ELEMS + 4 * Q_ELEMS) * 2 + 4 * BQ * 4;
    static_assert(2 * BQ <= THREADS, "one thread per row loads lse2 and delta");
};

// One thread block owns BKV keys; warp w owns keys 16w .. 16w+15 and their dk, dv rows in registers, so the four
// products of a query block (S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q) need no exchange between
// warps: Q, dO, lse2 and delta of the query block are the only shared operands. Query rows past a range's end
// load as zeros with lse2 = delta = 0, which makes their P^T column finite and their dO and Q rows zero, so they
// add nothing; keys past the block's end get P^T = 0.
template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_bwd_dkdv(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                        const T* __restrict__ dO, const float* __restrict__ lse2, const float* __restrict__ delta,
                        T* __restrict__ dk, T* __restrict__ dv, const float* __restrict__ dkAdd,
                        const float* __restrict__ dvAdd, const int4* __restrict__ kvBlocks,
                        const int* __restrict__ listOf,
                        const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads,
                        int S, float scaleLog2, float scale) {
    constexpr int D = C::D, BQ = C::BQ, THREADS = C::THREADS, BKV = C::BKV;
    constexpr int NQ = BQ / 8, DT = D / 8;
    using Layout = RowSwizzle<D>;
    using State = RowState<NQ, DT>;

    extern __shared__ __align__(128) unsigned char smemRaw[];
    T* sK = reinterpret_cast<T*>(smemRaw);
    T* sV = sK + C::KV_ELEMS;
    T* sQ = sV + C::KV_ELEMS;       // [2][BQ*D]
    T* sdO = sQ + 2 * C::Q_ELEMS;   // [2][BQ*D]
    float* sL = reinterpret_cast<float*>(sdO + 2 * C::Q_ELEMS);  // [2][BQ]
    float* sDelta = sL + 2 * BQ;                                 // [2][BQ]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, warpRow = warp * 16;
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

    load_rows<BKV, D, THREADS, Layout>(sK, k + headOffset, kb.x, kb.x + kb.y, tid);
    load_rows<BKV, D, THREADS, Layout>(sV, v + headOffset, kb.x, kb.x + kb.y, tid);
    auto loadStage = [&](int stage, const KvCursor& c) {
        if constexpr (C::NWARPS == 8) {
            load_rows<BQ, D, THREADS, Layout>(sQ + stage * C::Q_ELEMS, qh, c.kb, c.end, tid);
            load_rows<BQ, D, THREADS, Layout>(sdO + stage * C::Q_ELEMS, dOh, c.kb, c.end, tid);
        } else {
            load_rows_rolled<BQ, D, THREADS, Layout>(sQ + stage * C::Q_ELEMS, sdO + stage * C::Q_ELEMS, qh, dOh, c.kb, c.end, tid);
        }
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

    float dkAcc[DT][4], dvAcc[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
        for (int e = 0; e < 4; ++e) dkAcc[dt][e] = dvAcc[dt][e] = 0.f;
    const bool keyLo = warpRow + (lane >> 2) < kb.y, keyHi = warpRow + (lane >> 2) + 8 < kb.y;

    for (int j = 0; cur.valid(rEnd); ++j) {
        KvCursor next = cur;
        next.template advance<BQ>(ranges, rEnd);
        cp_async_wait<0>();
        __syncthreads();  // stage j landed; every warp is done with stage j-1
        if (next.valid(rEnd)) loadStage((j + 1) & 1, next);
        cp_async_commit();
        const T* sQs = sQ + (j & 1) * C::Q_ELEMS;
        const T* sdOs = sdO + (j & 1) * C::Q_ELEMS;
        const float* sLs = sL + (j & 1) * BQ;
        const float* sDeltaS = sDelta + (j & 1) * BQ;
        const int mi = lane >> 3;

        // S^T = K Q^T, then P^T = exp2(S^T · scaleLog2 − lse2[query])
        float p[NQ][4];
#pragma unroll
        for (int nt = 0; nt < NQ; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) p[nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
            uint32_t a[4];
            ldmatrix_x4(a, smem_addr(sK + Layout::offset(warpRow + (lane & 15), ks * 2 + (lane >> 4))));
#pragma unroll
            for (int np = 0; np < BQ / 16; ++np) {
                uint32_t b[4];
                ldmatrix_x4(b, smem_addr(sQs + Layout::offset(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1))));
                MmaSync<T>::run(p[2 * np], a, b[0], b[1]);
                MmaSync<T>::run(p[2 * np + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int nt = 0; nt < NQ; ++nt) {
            const float2 l = *reinterpret_cast<const float2*>(sLs + nt * 8 + 2 * (lane & 3));
            p[nt][0] = keyLo ? fast_exp2(fmaf(p[nt][0], scaleLog2, -l.x)) : 0.f;
            p[nt][1] = keyLo ? fast_exp2(fmaf(p[nt][1], scaleLog2, -l.y)) : 0.f;
            p[nt][2] = keyHi ? fast_exp2(fmaf(p[nt][2], scaleLog2, -l.x)) : 0.f;
            p[nt][3] = keyHi ? fast_exp2(fmaf(p[nt][3], scaleLog2, -l.y)) : 0.f;
        }

        // dV += P^T dO
#pragma unroll
        for (int kq = 0; kq < BQ / 16; ++kq) {
            uint32_t a[4];
            State::template probabilities<T>(p, kq, a);
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, smem_addr(sdOs + Layout::offset(kq * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1))));
                MmaSync<T>::run(dvAcc[2 * dp], a, b[0], b[1]);
                MmaSync<T>::run(dvAcc[2 * dp + 1], a, b[2], b[3]);
            }
        }

        // dP^T = V dO^T, then dS^T = P^T ⊙ (dP^T − delta[query]) in place
        float ds[NQ][4];
#pragma unroll
        for (int nt = 0; nt < NQ; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) ds[nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
            uint32_t a[4];
            ldmatrix_x4(a, smem_addr(sV + Layout::offset(warpRow + (lane & 15), ks * 2 + (lane >> 4))));
#pragma unroll
            for (int np = 0; np < BQ / 16; ++np) {
                uint32_t b[4];
                ldmatrix_x4(b, smem_addr(sdOs + Layout::offset(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1))));
                MmaSync<T>::run(ds[2 * np], a, b[0], b[1]);
                MmaSync<T>::run(ds[2 * np + 1], a, b[2], b[3]);
            }
        }
#pragma unroll
        for (int nt = 0; nt < NQ; ++nt) {
            const float2 dl = *reinterpret_cast<const float2*>(sDeltaS + nt * 8 + 2 * (lane & 3));
            ds[nt][0] = p[nt][0] * (ds[nt][0] - dl.x);
            ds[nt][1] = p[nt][1] * (ds[nt][1] - dl.y);
            ds[nt][2] = p[nt][2] * (ds[nt][2] - dl.x);
            ds[nt][3] = p[nt][3] * (ds[nt][3] - dl.y);
        }

        // dK += dS^T Q (scaled at the store)
#pragma unroll
        for (int kq = 0; kq < BQ / 16; ++kq) {
            uint32_t a[4];
            State::template probabilities<T>(ds, kq, a);
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, smem_addr(sQs + Layout::offset(kq * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1))));
                MmaSync<T>::run(dkAcc[2 * dp], a, b[0], b[1]);
                MmaSync<T>::run(dkAcc[2 * dp + 1], a, b[2], b[3]);
            }
        }

        cur = next;
    }

    store_rows<T, DT>(dk + headOffset, dkAcc, scale, slot_row(dkAdd, slice, slots, kb.z, D), warpRow, kb.x, kb.y, lane);
    store_rows<T, DT>(dv + headOffset, dvAcc, 1.f, slot_row(dvAdd, slice, slots, kb.z, D), warpRow, kb.x, kb.y, lane);
}

// ---- 3. dQ ----
template <int D_, int BN_, int NWARPS_ = 8>
struct BwdQConfig {
    static constexpr int D = D_;
    static constexpr int BN = BN_;
    static constexpr int NWARPS = NWARPS_;
    static constexpr int MIN_BLOCKS = NWARPS == 8 ? 1 : 2;
    static constexpr int THREADS = NWARPS * 32;
    static constexpr int BM = NWARPS * 16;
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int SMEM = (2 * Q_ELEMS + 4 * KV_ELEMS) * 2;  // Q, dO; two stages of K and of V
};

// Warp w owns query rows 16w .. 16w+15 with their Q and dO fragments in registers, like the forward; per KV
// block it recomputes P and dP, forms dS and adds dS K. Keys past a range's end get P = 0.
template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_bwd_dq(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                      const T* __restrict__ dO, const float* __restrict__ lse2, const float* __restrict__ delta,
                      T* __restrict__ dq, const float* __restrict__ dqAdd, const int4* __restrict__ qBlocks,
                      const int* __restrict__ listOf,
                      const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads, int S,
                      float scaleLog2, float scale) {
    constexpr int D = C::D, BN = C::BN, THREADS = C::THREADS;
    constexpr int NT = BN / 8, DT = D / 8;
    using Layout = RowSwizzle<D>;
    using State = RowState<NT, DT>;

    extern __shared__ __align__(128) unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>(smemRaw);
    T* sdO = sQ + C::Q_ELEMS;
    T* sK = sdO + C::Q_ELEMS;        // [2][BN*D]
    T* sV = sK + 2 * C::KV_ELEMS;    // [2][BN*D]

    const int tid = threadIdx.x, lane = tid & 31, warpRow = (tid >> 5) * 16;
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
    load_rows<C::BM, D, THREADS, Layout>(sQ, q + work.headOffset, work.rowStart, work.rowStart + work.rowCount, tid);
    load_rows<C::BM, D, THREADS, Layout>(sdO, dO + work.headOffset, work.rowStart, work.rowStart + work.rowCount, tid);
    if (cur.valid(rEnd)) {
        load_rows<BN, D, THREADS, Layout>(sK, kh, cur.kb, cur.end, tid);
        load_rows<BN, D, THREADS, Layout>(sV, vh, cur.kb, cur.end, tid);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t qf[D / 16][4], df[D / 16][4];
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
        ldmatrix_x4(qf[ks], smem_addr(sQ + Layout::offset(warpRow + (lane & 15), ks * 2 + (lane >> 4))));
        ldmatrix_x4(df[ks], smem_addr(sdO + Layout::offset(warpRow + (lane & 15), ks * 2 + (lane >> 4))));
    }

    float acc[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; ++dt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[dt][e] = 0.f;

    for (int j = 0; cur.valid(rEnd); ++j) {
        KvCursor next = cur;
        next.template advance<BN>(ranges, rEnd);
        if (j > 0) {
            cp_async_wait<0>();
            __syncthreads();  // stage j landed; every warp is done with stage j-1
        }
        if (next.valid(rEnd)) {
            load_rows<BN, D, THREADS, Layout>(sK + ((j + 1) & 1) * C::KV_ELEMS, kh, next.kb, next.end, tid);
            load_rows<BN, D, THREADS, Layout>(sV + ((j + 1) & 1) * C::KV_ELEMS, vh, next.kb, next.end, tid);
        }
        cp_async_commit();
        const T* sKs = sK + (j & 1) * C::KV_ELEMS;
        const T* sVs = sV + (j & 1) * C::KV_ELEMS;
        const int mi = lane >> 3;

        float p[NT][4], ds[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) p[nt][e] = ds[nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
            for (int np = 0; np < BN / 16; ++np) {
                uint32_t b[4];
                ldmatrix_x4(b, smem_addr(sKs + Layout::offset(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1))));
                MmaSync<T>::run(p[2 * np], qf[ks], b[0], b[1]);
                MmaSync<T>::run(p[2 * np + 1], qf[ks], b[2], b[3]);
                ldmatrix_x4(b, smem_addr(sVs + Layout::offset(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1))));
                MmaSync<T>::run(ds[2 * np], df[ks], b[0], b[1]);
                MmaSync<T>::run(ds[2 * np + 1], df[ks], b[2], b[3]);
            }
        }
        State::mask(p, cur.kb, cur.end, lane);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int h = e >> 1;
                ds[nt][e] = fast_exp2(fmaf(p[nt][e], scaleLog2, -rowL[h])) * (ds[nt][e] - rowD[h]);
            }
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) {
            uint32_t a[4];
            State::template probabilities<T>(ds, ks, a);
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, smem_addr(sKs + Layout::offset(ks * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1))));
                MmaSync<T>::run(acc[2 * dp], a, b[0], b[1]);
                MmaSync<T>::run(acc[2 * dp + 1], a, b[2], b[3]);
            }
        }
        cur = next;
    }

    store_rows<T, DT>(dq + work.headOffset, acc, scale, slot_row(dqAdd, work.slice, slots, qBlocks[blockIdx.x].z, D),
                      warpRow, work.rowStart, work.rowCount, lane);
}

// The configurations behind the entry points: 128-row blocks, and the 64-row (bm64) ones.
template <int D> using BwdKvShipped = BwdKvConfig<D, 64>;
template <int D> using BwdQShipped = BwdQConfig<D, 64>;
template <int D> using BwdKvShipped64 = BwdKvConfig<D, 64, 4>;
template <int D> using BwdQShipped64 = BwdQConfig<D, 64, 4>;

// Template kernels for the standalone checker's configuration sweeps.
template <typename T, int D>
__global__ void __launch_bounds__(256) tile_attention_bwd_prep_kernel(const T* o, const T* dO, const float* lse,
                                                                      float* delta, float* lse2, long long rows) {
    bwd_prep<T, D>(o, dO, lse, delta, lse2, rows);
}

template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS)
tile_attention_bwd_dkdv_kernel(const T* q, const T* k, const T* v, const T* dO, const float* lse2, const float* delta,
                               T* dk, T* dv, const int4* kvBlocks, const int* listOf, const int* rangeOffsets,
                               const int2* ranges, int slots, int heads, int S, float scaleLog2, float scale) {
    tile_attention_bwd_dkdv<T, C>(q, k, v, dO, lse2, delta, dk, dv, nullptr, nullptr, kvBlocks, listOf, rangeOffsets,
                                  ranges, slots, heads, S, scaleLog2, scale);
}

template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS)
tile_attention_bwd_dq_kernel(const T* q, const T* k, const T* v, const T* dO, const float* lse2, const float* delta,
                             T* dq, const int4* qBlocks, const int* listOf, const int* rangeOffsets, const int2* ranges,
                             int slots, int heads, int S, float scaleLog2, float scale) {
    tile_attention_bwd_dq<T, C>(q, k, v, dO, lse2, delta, dq, nullptr, qBlocks, listOf, rangeOffsets, ranges, slots,
                                heads, S, scaleLog2, scale);
}

}  // namespace tileattn

// One dkdv and one dq entry point: NAME_SUFFIX is "" or "bm64_", KC and QC their configurations.
#define TILEATTN_BWD_PAIR(NAME_SUFFIX, SUFFIX, T, KC, QC)                                                        \
    extern "C" __global__ void __launch_bounds__(KC::THREADS, KC::MIN_BLOCKS)                                    \
    tileattn_tile_attention_bwd_dkdv_##NAME_SUFFIX##SUFFIX(                                                      \
        const T* q, const T* k, const T* v, const T* dO, const float* lse2, const float* delta, T* dk, T* dv,    \
        const float* dkAdd, const float* dvAdd, const int4* kvBlocks, const int* listOf,                         \
        const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2, float scale) { \
        tileattn::tile_attention_bwd_dkdv<T, KC>(q, k, v, dO, lse2, delta, dk, dv, dkAdd, dvAdd, kvBlocks,       \
                                                 listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2, scale); \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(QC::THREADS, QC::MIN_BLOCKS)                                    \
    tileattn_tile_attention_bwd_dq_##NAME_SUFFIX##SUFFIX(                                                        \
        const T* q, const T* k, const T* v, const T* dO, const float* lse2, const float* delta, T* dq,           \
        const float* dqAdd, const int4* qBlocks, const int* listOf, const int* rangeOffsets, const int2* ranges, \
        int slots, int heads, int S, float scaleLog2, float scale) {                                             \
        tileattn::tile_attention_bwd_dq<T, QC>(q, k, v, dO, lse2, delta, dq, dqAdd, qBlocks, listOf,            \
                                               rangeOffsets, ranges, slots, heads, S, scaleLog2, scale);         \
    }

#define TILEATTN_BWD_ENTRIES(SUFFIX, T, D)                                                                       \
    extern "C" __global__ void __launch_bounds__(256)                                                            \
    tileattn_tile_attention_bwd_prep_##SUFFIX(const T* o, const T* dO, const float* lse, float* delta,           \
                                              float* lse2, long long rows) {                                     \
        tileattn::bwd_prep<T, D>(o, dO, lse, delta, lse2, rows);                                                 \
    }                                                                                                            \
    TILEATTN_BWD_PAIR(, SUFFIX, T, tileattn::BwdKvShipped<D>, tileattn::BwdQShipped<D>)                          \
    TILEATTN_BWD_PAIR(bm64_, SUFFIX, T, tileattn::BwdKvShipped64<D>, tileattn::BwdQShipped64<D>)

#ifndef TILEATTN_BWD_NO_ENTRY_POINTS
TILEATTN_BWD_ENTRIES(bf16_d64, __nv_bfloat16, 64)
TILEATTN_BWD_ENTRIES(bf16_d128, __nv_bfloat16, 128)
TILEATTN_BWD_ENTRIES(f16_d64, __half, 64)
TILEATTN_BWD_ENTRIES(f16_d128, __half, 128)
#endif
