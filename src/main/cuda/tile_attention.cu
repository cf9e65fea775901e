// Block-sparse attention forward over tile-ordered tokens: STA, dense, and any mask written as lists of KV
// token ranges per query block. Portable path (sm_80 and newer): mma.sync m16n8k16, ldmatrix, cp.async double
// buffering, online softmax in registers. tile_attention_sm90.cu is the Hopper path with the same ABI.
//
// ABI (all tensors contiguous, device pointers):
//   q, k, v      [B, heads, S, D] of T (bf16 or fp16); tokens in tile order, text tokens after the video.
//   o            of T: like q when oTokenHeads is 0, else token rows [B, S, H, D] with H = oTokenHeads (plane
//                b * heads + h of the launch is head h of batch b; VSA launches its B * H planes as B = 1,
//                heads = B * H and passes H here).
//   v            like q when vTokenHeads is 0, else token rows: row s of batch b at (b * S + s) * vRowStride, its
//                H = vTokenHeads heads D values each from there (token_rows in tile_attention.cuh).
//   lse          [B, heads, S] float: natural-log log-sum-exp of each row's scaled scores, or null.
//   qblocks      int4 per query block {rowStart, rowCount, slot, unused}, rowCount in [1, BM]. A block never
//                crosses a query tile, so all its rows share one KV list. Heaviest blocks first helps balance.
//   listOf       int [heads * slots]: the KV list of (head, slot). Heads with identical windows share lists.
//   rangeOffsets int [lists + 1]: the ranges of list l are ranges[rangeOffsets[l] .. rangeOffsets[l+1]).
//   ranges       int2 {start, end} of KV tokens, end > start; every list has at least one range.
//   slots, heads, S; scaleLog2 = softmax scale * log2(e) > 0: scores are scaled in fp32 after QK^T, then exp2.
// Launch: grid (query blocks, heads, B), BM = 128 rows per block, 256 threads, dynamic shared memory
// 768 * D bytes (96 KiB at D = 128: raise the function's limit above 48 KiB first).
// Keys past a range's end are masked only in the last, partial KV block of that range.
#include "tileattn/mma_sync.cuh"
#include "tileattn/tile_attention.cuh"

namespace tileattn {

template <int D_, int BN_>
struct PortableConfig {
    static constexpr int D = D_;
    static constexpr int BN = BN_;
    static constexpr int NWARPS = 8;
    static constexpr int THREADS = NWARPS * 32;
    static constexpr int BM = NWARPS * 16;
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int SMEM = (Q_ELEMS + 4 * KV_ELEMS) * 2;  // Q + two stages of K and of V
};

// One thread block: 8 warps of 16 query rows each; Q fragments stay in registers for the whole block.
// The scores of KV block j+1 are computed in the same straight-line code as block j's softmax and P·V, so the
// tensor pipe has independent work while the exponentials run. K therefore runs one block ahead of V: while
// block j computes, K[j+1] and V[j] are resident and K[j+2], V[j+1] load. One barrier per block.
template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_fwd(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                   float* __restrict__ lse, const int4* __restrict__ qblocks, const int* __restrict__ listOf,
                   const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads, int S,
                   float scaleLog2, int oTokenHeads = 0, int vTokenHeads = 0, int vRowStride = 0) {
    constexpr int D = C::D, BN = C::BN, THREADS = C::THREADS;
    constexpr int NT = BN / 8, DT = D / 8;
    using Layout = RowSwizzle<D>;
    using State = RowState<NT, DT>;

    extern __shared__ __align__(128) unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>(smemRaw);
    T* sK = sQ + C::Q_ELEMS;         // [2][BN*D]
    T* sV = sK + 2 * C::KV_ELEMS;    // [2][BN*D]

    const int tid = threadIdx.x, lane = tid & 31, warpRow = (tid >> 5) * 16;
    const BlockWork work = block_work(qblocks, listOf, rangeOffsets, slots, heads, S, D, lse);
    const int rEnd = work.rangeEnd;
    const T* kh = k + work.headOffset;
    const PlaneRows vRows = token_rows(vTokenHeads, vRowStride, work.slice, S, D);
    const T* vh = v + vRows.offset;

    State st;
    st.init();
    uint32_t qf[D / 16][4];
    float sA[NT][4], sB[NT][4];

    auto scores = [&](float (&s)[NT][4], const T* sKs) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
            for (int np = 0; np < BN / 16; ++np) {
                uint32_t b[4];
                const int mi = lane >> 3;
                ldmatrix_x4(b, smem_addr(sKs + Layout::offset(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1))));
                MmaSync<T>::run(s[2 * np], qf[ks], b[0], b[1]);
                MmaSync<T>::run(s[2 * np + 1], qf[ks], b[2], b[3]);
            }
        }
    };
    auto accumulate = [&](const float (&p)[NT][4], const T* sVs) {
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) {
            uint32_t a[4];
            State::template probabilities<T>(p, ks, a);
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                uint32_t b[4];
                const int mi = lane >> 3;
                ldmatrix_x4_trans(b, smem_addr(sVs + Layout::offset(ks * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1))));
                MmaSync<T>::run(st.acc[2 * dp], a, b[0], b[1]);
                MmaSync<T>::run(st.acc[2 * dp + 1], a, b[2], b[3]);
            }
        }
    };

    KvCursor cur, next, next2;
    cur.start(ranges, work.rangeBegin, rEnd);
    next = cur;
    next.template advance<BN>(ranges, rEnd);
    next2 = next;
    next2.template advance<BN>(ranges, rEnd);

    load_rows<C::BM, D, THREADS, Layout>(sQ, q + work.headOffset, work.rowStart, work.rowStart + work.rowCount, tid);
    load_rows<BN, D, THREADS, Layout>(sK, kh, cur.kb, cur.end, tid);
    cp_async_commit();
    if (next.valid(rEnd)) load_rows<BN, D, THREADS, Layout>(sK + C::KV_ELEMS, kh, next.kb, next.end, tid);
    load_rows<BN, D, THREADS, Layout>(sV, vh, cur.kb, cur.end, tid, vRows.stride);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks)
        ldmatrix_x4(qf[ks], smem_addr(sQ + Layout::offset(warpRow + (lane & 15), ks * 2 + (lane >> 4))));
    scores(sA, sK);
    State::mask(sA, cur.kb, cur.end, lane);

    int j = 0;
    auto step = [&](float (&now)[NT][4], float (&ahead)[NT][4]) -> bool {
        cp_async_wait<0>();
        __syncthreads();  // K[j+1] and V[j] landed; every warp is done with block j-1's stages
        if (next2.valid(rEnd)) load_rows<BN, D, THREADS, Layout>(sK + (j & 1) * C::KV_ELEMS, kh, next2.kb, next2.end, tid);
        if (next.valid(rEnd)) load_rows<BN, D, THREADS, Layout>(sV + ((j + 1) & 1) * C::KV_ELEMS, vh, next.kb, next.end, tid,
                                                            vRows.stride);
        cp_async_commit();
        scores(ahead, sK + ((j + 1) & 1) * C::KV_ELEMS);  // past the last block this reads stale data, never used
        st.softmax(now, scaleLog2);
        accumulate(now, sV + (j & 1) * C::KV_ELEMS);
        if (!next.valid(rEnd)) return false;
        State::mask(ahead, next.kb, next.end, lane);
        next = next2;
        next2.template advance<BN>(ranges, rEnd);
        ++j;
        return true;
    };
    for (;;) {
        if (!step(sA, sB)) break;
        if (!step(sB, sA)) break;
    }

    const PlaneRows out = output_rows(oTokenHeads, work.slice, S, D);
    st.template store<T>(o + out.offset, out.stride, work.lseRow, warpRow, work.rowStart, work.rowCount, lane);
}

// The same body as a template kernel, for the standalone checker's configuration sweeps.
template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 1)
tile_attention_fwd_kernel(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks, const int* listOf,
                          const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2) {
    tile_attention_fwd<T, C>(q, k, v, o, lse, qblocks, listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2);
}

}  // namespace tileattn

#define TILEATTN_TILE_ATTENTION_ENTRY(NAME, T, D)                                                              \
    extern "C" __global__ void __launch_bounds__(256, 1)                                                       \
    NAME(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks, const int* listOf,          \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2,             \
         int oTokenHeads, int vTokenHeads, int vRowStride) {                                                   \
        tileattn::tile_attention_fwd<T, tileattn::PortableConfig<D, 64>>(q, k, v, o, lse, qblocks, listOf,     \
                                                                           rangeOffsets, ranges, slots, heads, \
                                                                           S, scaleLog2, oTokenHeads,          \
                                                                           vTokenHeads, vRowStride);           \
    }

TILEATTN_TILE_ATTENTION_ENTRY(tileattn_tile_attention_fwd_bf16_d64, __nv_bfloat16, 64)
TILEATTN_TILE_ATTENTION_ENTRY(tileattn_tile_attention_fwd_bf16_d128, __nv_bfloat16, 128)
TILEATTN_TILE_ATTENTION_ENTRY(tileattn_tile_attention_fwd_f16_d64, __half, 64)
TILEATTN_TILE_ATTENTION_ENTRY(tileattn_tile_attention_fwd_f16_d128, __half, 128)
