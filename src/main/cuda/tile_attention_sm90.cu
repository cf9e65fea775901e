// Hopper (sm_90a) path of the block-sparse attention forward: the same ABI, launch grid, query-block table and
// KV range lists as tile_attention.cu (read its header), with the matrix work on wgmma.
//   - 256 threads = two warpgroups; each owns 64 of the block's BM = 128 query rows.
//   - S = Q K^T: wgmma m64nBNk16 with Q and K both read from shared memory (K-major, 128-byte swizzle); the 64-row
//     entries keep Q in registers instead (QREGS), read once with ldmatrix.
//   - O += P V: wgmma m64nDk16 with P straight from the score registers (their layout is the A-fragment
//     layout) and V from shared memory read transposed (MN-major, 128-byte swizzle).
//   - KV blocks are BN consecutive positions of the list's keys laid end to end (PackedKeys): one block may take
//     keys from several ranges, so lists of partial tiles (VSA's edge tiles, 16 or 32 real keys of 64) need no
//     more blocks than their keys fill. Only the list's last block holds masked keys. The list is staged in
//     shared memory first (up to STAGED_RANGES ranges), since each step's copies wait on its entries.
//   - K runs one block ahead of V: block j+1's scores are issued asynchronously before block j's softmax, so
//     the tensor cores work while the exponentials run. All threads copy K and V of the same block together with
//     cp.async, two blocks ahead: two stages of K and three of V. The block's key rows come from a shared table
//     that BN threads fill one step earlier, one cursor walk each, so the copy path holds no walks.
//   - Packed blocks (the _bm64p_ entries, VSA's partial tiles): a 64-row block may hold up to four consecutive
//     query tiles of 16, 32 or 48 rows, qblocks[b].w = 256 | the tile of warp w's rows in bits 2w, 2w+1 (0 for a
//     block of one tile). Its list is the union of the tiles' selections and members[range] has bit s set when
//     the block's tile s selected that range; a warp masks the keys its tile did not select, so four tiles of 16
//     rows cost the union of their lists instead of four 64-row blocks over theirs.
// Launch: grid (query blocks, heads, B), 256 threads, dynamic shared memory 896 * D + 1024 bytes (Sm90Config with
// BN = 64); the _bm64_ entries take query blocks of at most 64 rows, 128 threads and 768 * D + 1024 bytes, the
// _bm64p_ entries likewise, with the members pointer last.
// Built for every target, but the body exists only in sm_90a code; elsewhere the entry points trap, and
// callers pick tile_attention.cu by compute capability.
#include "tileattn/tile_attention.cuh"
#include "tileattn/wgmma.cuh"

namespace tileattn {

// BM = 64 (one warpgroup) serves tiles of at most 64 tokens, such as VSA's 4x4x4: a 128-row block would leave
// half its rows empty, since query blocks never cross a tile.
// QREGS: each warp keeps its 16 query rows as register A operands, so that S = Q K^T reads only K from shared
// memory (an RS product: half the shared-memory bytes of the SS form; 64-key blocks only).
template <int D_, int BN_, int BM_ = 128, bool QREGS_ = false>
struct Sm90Config {
    static constexpr int D = D_;
    static constexpr int BN = BN_;
    static constexpr int BM = BM_;
    static constexpr bool QREGS = QREGS_;
    static_assert(!QREGS || BN == 64, "QREGS: the RS form's first step exists for N = 64");
    static constexpr int THREADS = 2 * BM;  // one warpgroup per 64 rows
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int K_STAGES = 2, V_STAGES = 3;
    static constexpr int STAGED_RANGES = 512;  // lists up to this long are walked from shared memory (4 KiB static)
    static constexpr int SMEM = (Q_ELEMS + (K_STAGES + V_STAGES) * KV_ELEMS) * 2 + 1024;  // + 1 KiB alignment slack
};

// Cp.async writes go through the generic proxy and wgmma reads through the async proxy: each writer waits for
// its copies and fences before the barrier that publishes them.
__device__ __forceinline__ void publish_copies() {
    cp_async_wait<0>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
}

template <typename T, typename C, bool PACKED = false>
__device__ __forceinline__ void
tile_attention_sm90_fwd(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                        float* __restrict__ lse, const int4* __restrict__ qblocks, const int* __restrict__ listOf,
                        const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads,
                        int S, float scaleLog2, int oTokenHeads = 0, int vTokenHeads = 0, int vRowStride = 0,
                        const unsigned char* __restrict__ members = nullptr) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int D = C::D, BN = C::BN, BM = C::BM, THREADS = C::THREADS;
    static_assert(!PACKED || (BN == 64 && BM == 64), "a packed block's member bits are two words per warp's 16 rows");
    constexpr int NT = BN / 8, DT = D / 8;
    using State = RowState<NT, DT>;
    using QLayout = Swizzle128<BM>;
    using KvLayout = Swizzle128<BN>;

    extern __shared__ unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    T* sK = sQ + C::Q_ELEMS;                      // [K_STAGES][BN*D]
    T* sV = sK + C::K_STAGES * C::KV_ELEMS;       // [V_STAGES][BN*D]

    const int tid = threadIdx.x, lane = tid & 31, warpRow = (tid >> 5) * 16;
    const int groupRow = (tid >> 7) * 64;  // first row of this warpgroup
    const BlockWork work = block_work(qblocks, listOf, rangeOffsets, slots, heads, S, D, lse);
    __shared__ int2 stagedRanges[C::STAGED_RANGES];
    const int2* list = stage_ranges<C::STAGED_RANGES, THREADS>(stagedRanges, ranges, work.rangeBegin, work.rangeEnd, tid);
    // A packed block's member bytes are staged with its ranges. The first version read them from global memory in
    // each step's table fill, where the load's latency may stall the step: its fine forward measured 14% slower
    // at 32,760 tokens (docs/benchmarks.md, tenth session); staged, the DiT's self-attention gained 4.5-5 ms.
    const bool packed = PACKED && ((qblocks[blockIdx.x].w >> 8) & 1);
    const int memberSlot = PACKED ? (qblocks[blockIdx.x].w >> (2 * (tid >> 5))) & 3 : 0;
    __shared__ unsigned char stagedMembers[PACKED ? C::STAGED_RANGES : 1];
    const unsigned char* listMembers = nullptr;
    if (packed) {
        listMembers = members + work.rangeBegin;
        const int n = work.rangeEnd - work.rangeBegin;
        if (n <= C::STAGED_RANGES) {
            for (int i = tid; i < n; i += THREADS) stagedMembers[i] = listMembers[i];
            listMembers = stagedMembers;
        }
    }
    __syncthreads();
    const int total = packed_total(list, work.rangeEnd - work.rangeBegin, lane);
    const int blocks = (total + BN - 1) / BN;
    const T* kh = k + work.headOffset;
    const PlaneRows vRows = token_rows(vTokenHeads, vRowStride, work.slice, S, D);
    const T* vh = v + vRows.offset;

    State st;
    st.init();
    float sA[NT][4], sB[NT][4];

    uint32_t qa[C::QREGS ? D / 16 : 1][4];  // filled once Q has landed
    // k16 step kk of Q K^T: both operands K-major; the step's 32 bytes lie inside one 128-byte swizzle row.
    auto scores = [&](float (&s)[NT][4], const T* sKs) {
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            const uint64_t b = smem_desc(sKs + (kk >> 2) * BN * 64 + (kk & 3) * 16, 16, 1024);
            if constexpr (C::QREGS) {
                wgmma_rs_k<T, BN, 0>(s, qa[kk], b, kk);
            } else {
                const uint64_t a = smem_desc(sQ + (kk >> 2) * BM * 64 + groupRow * 64 + (kk & 3) * 16, 16, 1024);
                wgmma_ss<T, BN>(s, a, b, kk > 0);
            }
        }
        wgmma_commit();
    };
    // k16 step ks of P V covers keys 16ks .. 16ks+15 (two 1 KiB swizzle atoms); the D columns span D/64 slabs.
    auto accumulate = [&](const float (&p)[NT][4], const T* sVs) {
        uint32_t a[BN / 16][4];
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) State::template probabilities<T>(p, ks, a[ks]);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks)
            wgmma_rs<T, D>(st.acc, a[ks], smem_desc(sVs + ks * 16 * 64, BN * 128, 1024));
        wgmma_commit();
    };

    // The key rows of a block come from a table in shared memory, written one step ahead by the first BN threads
    // (one walk each per block); the copies then keep load_rows' pattern of whole rows per warp instruction.
    // Packed blocks also get, per block and tile s, which of the block's keys tile s selected: one bit per key in
    // two words, four blocks deep, since a block's bits are read a step after its rows' slot is refilled.
    __shared__ int rowTable[2][BN];
    __shared__ uint32_t memberBits[PACKED ? 4 : 1][4][2];
    PackedKeys keys;
    keys.start(list);
    auto fill_table = [&](int b) {
        if (tid < BN) {
            const int p = b * BN + tid;
            const bool real = p < total;
            rowTable[b & 1][tid] = real ? keys.row(p) : -1;
            if (packed) {
                const int m = real ? listMembers[keys.r] : 0;
#pragma unroll
                for (int s = 0; s < 4; ++s) {
                    const uint32_t bits = __ballot_sync(0xffffffffu, (m >> s) & 1);
                    if (lane == 0) memberBits[b & 3][s][tid >> 5] = bits;
                }
            }
        }
    };
    // Block b's keys past the list's end, and in a packed block those the warp's tile did not select, get -inf.
    auto mask = [&](float (&s)[NT][4], int b) {
        if (packed) {
            const uint32_t lo = memberBits[b & 3][memberSlot][0], hi = memberBits[b & 3][memberSlot][1];
            if ((lo & hi) != 0xffffffffu) {
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) {
                    const uint32_t word = nt < NT / 2 ? lo : hi;
                    const int col = (nt % (NT / 2)) * 8 + 2 * (lane & 3);
                    if (!((word >> col) & 1u)) { s[nt][0] = -INFINITY; s[nt][2] = -INFINITY; }
                    if (!((word >> (col + 1)) & 1u)) { s[nt][1] = -INFINITY; s[nt][3] = -INFINITY; }
                }
            }
        } else {
            State::mask(s, b * BN, total, lane);
        }
    };
    auto load_block = [&](int b, int kStage, int vStage) {
        constexpr int CHUNKS = D / 8, PER_THREAD = BN * CHUNKS / THREADS;
        static_assert(THREADS % CHUNKS == 0, "each thread keeps one column chunk");
        const int* table = rowTable[b & 1];
        int rows[PER_THREAD];
#pragma unroll
        for (int jj = 0; jj < PER_THREAD; ++jj) rows[jj] = table[(tid + jj * THREADS) / CHUNKS];
        const int c = tid % CHUNKS;
        T* tk = sK + kStage * C::KV_ELEMS;
        T* tv = sV + vStage * C::KV_ELEMS;
#pragma unroll
        for (int jj = 0; jj < PER_THREAD; ++jj) {
            const int r = (tid + jj * THREADS) / CHUNKS;
            cp_async16(smem_addr(tk + KvLayout::offset(r, c)), kh + static_cast<size_t>(max(rows[jj], 0)) * D + c * 8,
                       rows[jj] >= 0 ? 16 : 0);
        }
#pragma unroll
        for (int jj = 0; jj < PER_THREAD; ++jj) {
            const int r = (tid + jj * THREADS) / CHUNKS;
            cp_async16(smem_addr(tv + KvLayout::offset(r, c)), vh + static_cast<size_t>(max(rows[jj], 0)) * vRows.stride + c * 8,
                       rows[jj] >= 0 ? 16 : 0);
        }
    };

    load_rows<BM, D, THREADS, QLayout>(sQ, q + work.headOffset, work.rowStart, work.rowStart + work.rowCount, tid);
    fill_table(0);
    fill_table(1);
    __syncthreads();
    load_block(0, 0, 0);
    if (blocks > 1) load_block(1, 1, 1);
    cp_async_commit();
    publish_copies();  // also: every thread has read the tables of blocks 0 and 1
    if constexpr (C::QREGS) load_a_fragments<BM, D>(qa, sQ, warpRow, lane);
    fill_table(2);
    scores(sA, sK);
    wgmma_wait<0>();
    pin(sA);
    mask(sA, 0);

    // Step j: block j's softmax and P V, block j+1's scores, block j+2's copies and block j+3's table. Block j+2
    // takes K stage j % 2, whose block j was scored in step j-1, and V stage (j+2) % 3, whose block j-1 was
    // accumulated in step j-1; block j+3's table takes the slot block j+1's copies read in step j-1.
    int j = 0, vNow = 0;
    auto step = [&](float (&now)[NT][4], float (&ahead)[NT][4]) -> bool {
        publish_copies();  // block j+1 visible, block j+2's table written; all warpgroups are done with step j-1
        const int vAhead2 = vNow == 0 ? 2 : vNow - 1;
        if (j + 2 < blocks) load_block(j + 2, j & 1, vAhead2);
        cp_async_commit();
        scores(ahead, sK + ((j + 1) & 1) * C::KV_ELEMS);  // past the last block this reads stale data, never used
        if (j + 3 < blocks) fill_table(j + 3);
        st.template softmax<PACKED>(now, scaleLog2);
        accumulate(now, sV + vNow * C::KV_ELEMS);
        wgmma_wait<0>();
        pin(ahead);
        pin(st.acc);
        if (++j >= blocks) return false;
        mask(ahead, j);
        vNow = vNow == 2 ? 0 : vNow + 1;
        return true;
    };
    for (;;) {
        if (!step(sA, sB)) break;
        if (!step(sB, sA)) break;
    }

    const PlaneRows out = output_rows(oTokenHeads, work.slice, S, D);
    st.template store<T>(o + out.offset, out.stride, work.lseRow, warpRow, work.rowStart, work.rowCount, lane);
#else
    __trap();  // sm_90a only: dispatch picks tile_attention.cu elsewhere
#endif
}

// The same body as a template kernel, for the standalone checker's configuration sweeps.
template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 1)
tile_attention_sm90_fwd_kernel(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks,
                               const int* listOf, const int* rangeOffsets, const int2* ranges, int slots, int heads,
                               int S, float scaleLog2) {
    tile_attention_sm90_fwd<T, C>(q, k, v, o, lse, qblocks, listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2);
}

}  // namespace tileattn

// BN = 64: with BN = 128 the two score tiles, the output and P no longer fit 255 registers at D = 128 (ptxas
// spills 456 bytes), and BN = 64 measured faster at every benchmark shape (docs/benchmarks-sta.md).
#define TILEATTN_TILE_ATTENTION_SM90_ENTRY(NAME, T, D)                                                         \
    extern "C" __global__ void __launch_bounds__(256, 1)                                                       \
    NAME(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks, const int* listOf,          \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2,             \
         int oTokenHeads, int vTokenHeads, int vRowStride) {                                                   \
        tileattn::tile_attention_sm90_fwd<T, tileattn::Sm90Config<D, 64>>(q, k, v, o, lse, qblocks, listOf,    \
                                                                           rangeOffsets, ranges, slots, heads, \
                                                                           S, scaleLog2, oTokenHeads,          \
                                                                           vTokenHeads, vRowStride);           \
    }

TILEATTN_TILE_ATTENTION_SM90_ENTRY(tileattn_tile_attention_sm90_fwd_bf16_d64, __nv_bfloat16, 64)
TILEATTN_TILE_ATTENTION_SM90_ENTRY(tileattn_tile_attention_sm90_fwd_bf16_d128, __nv_bfloat16, 128)
TILEATTN_TILE_ATTENTION_SM90_ENTRY(tileattn_tile_attention_sm90_fwd_f16_d64, __half, 64)
TILEATTN_TILE_ATTENTION_SM90_ENTRY(tileattn_tile_attention_sm90_fwd_f16_d128, __half, 128)

// 64-row blocks: 128 threads, dynamic shared memory 768 * D + 1024 bytes, two blocks per SM.
#define TILEATTN_TILE_ATTENTION_SM90_BM64_ENTRY(NAME, T, D)                                                    \
    extern "C" __global__ void __launch_bounds__(128, 2)                                                       \
    NAME(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks, const int* listOf,          \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2,             \
         int oTokenHeads, int vTokenHeads, int vRowStride) {                                                   \
        tileattn::tile_attention_sm90_fwd<T, tileattn::Sm90Config<D, 64, 64, true>>(                           \
            q, k, v, o, lse, qblocks, listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2, oTokenHeads,     \
            vTokenHeads, vRowStride);                                                                          \
    }

TILEATTN_TILE_ATTENTION_SM90_BM64_ENTRY(tileattn_tile_attention_sm90_fwd_bm64_bf16_d64, __nv_bfloat16, 64)
TILEATTN_TILE_ATTENTION_SM90_BM64_ENTRY(tileattn_tile_attention_sm90_fwd_bm64_bf16_d128, __nv_bfloat16, 128)
TILEATTN_TILE_ATTENTION_SM90_BM64_ENTRY(tileattn_tile_attention_sm90_fwd_bm64_f16_d64, __half, 64)
TILEATTN_TILE_ATTENTION_SM90_BM64_ENTRY(tileattn_tile_attention_sm90_fwd_bm64_f16_d128, __half, 128)

// 64-row blocks that may pack several partial tiles (see the header), with their list's member bits.
#define TILEATTN_TILE_ATTENTION_SM90_BM64P_ENTRY(NAME, T, D)                                                   \
    extern "C" __global__ void __launch_bounds__(128, 2)                                                       \
    NAME(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks, const int* listOf,          \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2,             \
         int oTokenHeads, int vTokenHeads, int vRowStride, const unsigned char* members) {                     \
        tileattn::tile_attention_sm90_fwd<T, tileattn::Sm90Config<D, 64, 64, true>, true>(                     \
            q, k, v, o, lse, qblocks, listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2, oTokenHeads,     \
            vTokenHeads, vRowStride, members);                                                                 \
    }

TILEATTN_TILE_ATTENTION_SM90_BM64P_ENTRY(tileattn_tile_attention_sm90_fwd_bm64p_bf16_d64, __nv_bfloat16, 64)
TILEATTN_TILE_ATTENTION_SM90_BM64P_ENTRY(tileattn_tile_attention_sm90_fwd_bm64p_bf16_d128, __nv_bfloat16, 128)
TILEATTN_TILE_ATTENTION_SM90_BM64P_ENTRY(tileattn_tile_attention_sm90_fwd_bm64p_f16_d64, __half, 64)
TILEATTN_TILE_ATTENTION_SM90_BM64P_ENTRY(tileattn_tile_attention_sm90_fwd_bm64p_f16_d128, __half, 128)
