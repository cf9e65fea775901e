// Hopper (sm_90a) warp-specialized forward for query blocks of at most 64 rows, such as VSA's 4x4x4 tiles: the
// query-block table and KV range lists of tile_attention.cu (read its header), with q, k, v given as tensor maps.
//   - A block runs two independent pipelines. Pipeline p: consumer warpgroup p computes its items (64 query rows
//     each); lane 0 of warp 8 + p copies their Q and KV blocks with the bulk tensor copy engine into the
//     pipeline's ring of STAGES shared-memory stages (128-byte swizzle, completing on the stage's "full" mbarrier
//     by byte count), and the consumer hands each stage back on its "empty" mbarrier. Items with different KV
//     lists share no loads, so the two pipelines never wait for each other.
//   - A KV block is 64 key rows packed from the list in pieces of 8 consecutive rows, range after range, so a list
//     of partial tiles (16 or 32 real keys of 64) costs the blocks its keys fill, as in tile_attention_sm90.cu. A
//     block whose 64 rows are consecutive in memory (a whole tile) arrives as one 64-row box per 64 columns, any
//     other as 8-row boxes. A range whose length is not a multiple of 8 pads its last piece with rows past its end;
//     pieces the list cannot fill repeat the block's last row. The producer writes each block's description
//     (piece rows, a bit per real key, whether it is the item's last) beside its stage before the copies are
//     announced; consumers mask the keys whose bit is clear to -inf, so their P is 0 against finite V.
//   - The consumer loop is tile_attention_sm90_ws.cu's: S_j and P_{j-1} V_{j-1} issued back to back, block j's
//     softmax while P_{j-1} V_{j-1} runs. Q goes from shared memory into registers once per item (and its stage
//     back to the producer), since S_j with both operands in shared memory would saturate its bandwidth.
// Each list must hold at least one key (every plan's lists do).
// Arguments: tensor maps of q (boxes of 64 rows), of k and of v (boxes of 64 rows, then of 8 rows), all over
// [B * heads * S, D] matrices of 16-bit elements with 64-column boxes and 128-byte swizzle; then o, lse, the plan's
// tables, slots, heads, S, scaleLog2, the query block count and the item count (query blocks x heads x B).
// Launch: grid ((items + 1) / 2) or fewer blocks (item i goes to pipeline i % 2 of block i / 2, + 2 * gridDim.x
// ...), 320 threads, dynamic shared memory Sm90Ws64Config::SMEM bytes (1024 + 2 * (64 + 2 * STAGES * 64) * D * 2 +
// 2 * STAGES * 48 + 2 * (2 + 4 * STAGES) * 8; 230912 at D = 128 with the entries' three stages). Built for every target, but the
// body exists only in sm_90a code; elsewhere the entry points trap.
#include <cuda.h>

#include "tileattn/mma_sync.cuh"
#include "tileattn/tile_attention.cuh"
#include "tileattn/warp_specialized.cuh"
#include "tileattn/wgmma.cuh"

namespace tileattn {

template <int D_, int STAGES_, bool Q_REGISTERS_ = true>
struct Sm90Ws64Config {
    static constexpr int D = D_;
    static constexpr int STAGES = STAGES_;
    // Q K^T with Q from registers (RS) rather than shared memory (SS): an m64n64k16 product that reads both operands
    // from shared memory needs 4 KiB per 32 tensor-core cycles, all the bandwidth shared memory has.
    static constexpr bool Q_REGISTERS = Q_REGISTERS_;
    static constexpr int BM = 64;
    static constexpr int BN = 64;
    static constexpr int PIECE = 8;  // rows per piece: one 1 KiB swizzle atom per 64 columns
    static constexpr int PIECES = BN / PIECE;
    static constexpr int PIPES = 2;
    // Consumer warpgroups first (wgmma needs warpgroups that start at a multiple of four warps), then one producer
    // warp per pipeline: 320 threads leave each up to 204 registers, so no setmaxnreg is needed.
    static constexpr int CONSUMER_THREADS = 128 * PIPES;
    static constexpr int PRODUCER_THREADS = 32 * PIPES;
    static constexpr int THREADS = CONSUMER_THREADS + PRODUCER_THREADS;
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int PIPE_ELEMS = Q_ELEMS + 2 * STAGES * KV_ELEMS;
    static constexpr int BARRIERS = 2 + 4 * STAGES;  // per pipeline
    static constexpr int SMEM = 1024 + PIPES * PIPE_ELEMS * 2 + PIPES * STAGES * 48 + PIPES * BARRIERS * 8;
    static_assert(SMEM <= 227 * 1024, "more shared memory than one Hopper block may have");
};

// A KV block as the producer packed it: the first row of each piece (in the [B * heads * S, D] matrix), a bit per
// key that holds a real one (key 8i + r: bit r of byte i), and whether the item has no further block.
struct KvBlock {
    int row[8];
    uint32_t real[2];
    int last;
    int whole;  // the 64 rows are consecutive: one box per 64 columns
};
static_assert(sizeof(KvBlock) == 48, "Sm90Ws64Config::SMEM counts 48 bytes per description");

// The 8-row pieces of one list, range after range.
struct PieceCursor {
    const int2* ranges;
    int r, rEnd, x, end;

    __device__ __forceinline__ void start(const int2* list, int first, int last) {
        ranges = list;
        r = first - 1;
        rEnd = last;
        x = end = 0;
        skip();
    }
    __device__ __forceinline__ bool valid() const { return r < rEnd; }
    // The real rows of the current piece (1 .. 8), then on to the next piece.
    __device__ __forceinline__ int take() {
        const int n = min(8, end - x);
        x += 8;
        if (x >= end) skip();
        return n;
    }

  private:
    __device__ __forceinline__ void skip() {  // to the next non-empty range, or past the list
        do {
            if (++r >= rEnd) return;
            const int2 range = ranges[r];
            x = range.x;
            end = range.y;
        } while (x >= end);
    }
};

// The producer thread of one pipeline. Per item: K_0 (once its stage is free), Q (once the consumer released the
// previous item's), then K_j and V_{j-1} for each further block, then the last V. g counts the pipeline's KV blocks
// over all items: block g takes stage g % STAGES for the (g / STAGES + 1)-th time.
template <typename C>
__device__ __forceinline__ void produce64(const CUtensorMap* tmQ, const CUtensorMap* tmK, const CUtensorMap* tmK8,
                                          const CUtensorMap* tmV, const CUtensorMap* tmV8, uint32_t sQ, uint32_t sK,
                                          uint32_t sV, Barriers<C::STAGES> bars, KvBlock* blocks,
                                          const WorkItems& items, const int2* ranges, int pipe) {
    constexpr int D = C::D, BN = C::BN, ST = C::STAGES;
    constexpr uint32_t STAGE_BYTES = C::KV_ELEMS * 2;
    auto copy = [&](const KvBlock& b, const CUtensorMap* whole, const CUtensorMap* piece, uint32_t dst, uint32_t bar) {
        mbar_arrive_expect_tx(bar, STAGE_BYTES);
        if (b.whole) {
#pragma unroll
            for (int slab = 0; slab < D / 64; ++slab) tma_load_2d(dst + slab * BN * 128, whole, slab * 64, b.row[0], bar);
        } else {
#pragma unroll
            for (int i = 0; i < C::PIECES; ++i)
#pragma unroll
                for (int slab = 0; slab < D / 64; ++slab)
                    tma_load_2d(dst + slab * BN * 128 + i * C::PIECE * 128, piece, slab * 64, b.row[i], bar);
        }
    };
    auto loadK = [&](int g, PieceCursor& cur, int planeRow) {
        const int s = g % ST;
        if (g >= ST) mbar_wait(bars.emptyK(s), ((g / ST) - 1) & 1);
        KvBlock& b = blocks[s];
        uint32_t real[2] = {0u, 0u};
        int whole = 1, row = 0;
#pragma unroll
        for (int i = 0; i < C::PIECES; ++i) {
            if (cur.valid()) {
                row = planeRow + cur.x;
                const int n = cur.take();
                real[i >> 2] |= ((1u << n) - 1u) << (8 * (i & 3));  // n <= 8: no shift by 32
            }
            b.row[i] = row;
            if (i > 0 && row != b.row[0] + 8 * i) whole = 0;
        }
        b.real[0] = real[0];
        b.real[1] = real[1];
        b.last = !cur.valid();
        b.whole = whole;
        copy(b, tmK, tmK8, sK + s * STAGE_BYTES, bars.fullK(s));
    };
    auto loadV = [&](int g) {
        const int s = g % ST;
        if (g >= ST) mbar_wait(bars.emptyV(s), ((g / ST) - 1) & 1);
        copy(blocks[s], tmV, tmV8, sV + s * STAGE_BYTES, bars.fullV(s));
    };
    int g = 0, n = 0;
    ItemCursor it;
    it.start(items, 2 * static_cast<int>(blockIdx.x) + pipe, 2 * static_cast<int>(gridDim.x));
    for (; it.valid(items); it.advance(items), ++n) {
        const BlockWork work = it.work(items);
        const int planeRow = static_cast<int>(work.headOffset / D);
        PieceCursor cur;
        cur.start(ranges, work.rangeBegin, work.rangeEnd);
        loadK(g, cur, planeRow);
        if (n > 0) mbar_wait(bars.emptyQ(), (n - 1) & 1);
        tma_rows<C::BM, D>(sQ, tmQ, planeRow + work.rowStart, bars.fullQ());
        for (++g; cur.valid(); ++g) {
            loadK(g, cur, planeRow);
            loadV(g - 1);
        }
        loadV(g - 1);
    }
}

// Keys whose bit in real is clear get -inf. Column 8nt + c of the scores is piece nt's key c.
template <int NT>
__device__ __forceinline__ void mask_pieces(float (&s)[NT][4], const uint32_t (&real)[2], int lane) {
    if ((real[0] & real[1]) == 0xFFFFFFFFu) return;
    const int c = 2 * (lane & 3);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        const uint32_t bits = real[nt >> 2] >> (8 * (nt & 3) + c);
        if (!(bits & 1u)) { s[nt][0] = -INFINITY; s[nt][2] = -INFINITY; }
        if (!(bits & 2u)) { s[nt][1] = -INFINITY; s[nt][3] = -INFINITY; }
    }
}

// The consumer warpgroup of one pipeline (ctid: its thread, 0 .. 127) over the pipeline's n-th item, whose KV
// blocks are g0, g0 + 1, ... of the ring's sequence; returns how many there were.
template <typename T, typename C>
__device__ __forceinline__ int consume64(T* oh, const T* sQ, const T* sK, const T* sV, Barriers<C::STAGES> bars,
                                         const KvBlock* blocks, const BlockWork& work, float scaleLog2, int ctid,
                                         int g0, int n) {
    constexpr int D = C::D, BN = C::BN, BM = C::BM, ST = C::STAGES;
    constexpr int NT = BN / 8, DT = D / 8;
    using State = RowState<NT, DT>;
    const int lane = ctid & 31, warpRow = (ctid >> 5) * 16;

    State st;
    st.init();
    float s[NT][4];
    uint32_t p[BN / 16][4];
    float alpha[2];
    uint32_t real[2];

    uint32_t q[C::Q_REGISTERS ? D / 16 : 1][4];  // Q's A fragments, k16 step kk in q[kk]
    auto scores = [&](const T* sKs) {
        pin(s);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            const uint64_t b = smem_desc(sKs + (kk >> 2) * BN * 64 + (kk & 3) * 16, 16, 1024);
            if constexpr (C::Q_REGISTERS) {
                wgmma_rs<T, BN, 0>(s, q[kk], b, kk > 0);
            } else {
                const uint64_t a = smem_desc(sQ + (kk >> 2) * BM * 64 + (kk & 3) * 16, 16, 1024);
                wgmma_ss<T, BN>(s, a, b, kk > 0);
            }
        }
        wgmma_commit();
        pin(s);
    };
    auto accumulate = [&](const T* sVs) {
        pin(st.acc);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) wgmma_rs<T, D>(st.acc, p[ks], smem_desc(sVs + ks * 16 * 64, BN * 128, 1024));
        wgmma_commit();
        pin(st.acc);
    };
    auto probabilities = [&] {
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) State::template probabilities<T>(s, ks, p[ks]);
    };
    // Block g's description, read before its K stage is handed back (the producer rewrites it after that).
    auto describe = [&](int sk) {
        real[0] = blocks[sk].real[0];
        real[1] = blocks[sk].real[1];
        return blocks[sk].last != 0;
    };

    mbar_wait(bars.fullQ(), n & 1);
    if constexpr (C::Q_REGISTERS) {
        // Lane l addresses row l % 8 of matrix l / 8: rows +0 / +8 of the warp's 16, chunk 2kk / 2kk + 1.
        const int row = warpRow + ((lane >> 3) & 1) * 8 + (lane & 7);
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk)
            ldmatrix_x4(q[kk], smem_addr(sQ + Swizzle128<BM>::offset(row, 2 * kk + (lane >> 4))));
        mbar_arrive(bars.emptyQ());  // Q lives in registers now: the next item's may load
    }
    const int s0 = g0 % ST;
    mbar_wait(bars.fullK(s0), (g0 / ST) & 1);
    bool last = describe(s0);
    scores(sK + s0 * C::KV_ELEMS);
    wgmma_wait<0>();
    pin(s);
    mbar_arrive(bars.emptyK(s0));
    mask_pieces(s, real, lane);
    st.update(s, scaleLog2, alpha);
    probabilities();

    int j = 1;
    while (!last) {
        const int g = g0 + j, sk = g % ST, sv = (g - 1) % ST;
        mbar_wait(bars.fullK(sk), (g / ST) & 1);
        last = describe(sk);
        scores(sK + sk * C::KV_ELEMS);
        st.rescale(alpha);  // P_{j-1}'s row maxima, before P_{j-1} V_{j-1} accumulates onto O
        mbar_wait(bars.fullV(sv), ((g - 1) / ST) & 1);
        accumulate(sV + sv * C::KV_ELEMS);
        wgmma_wait<1>();
        pin(s);
        mbar_arrive(bars.emptyK(sk));
        mask_pieces(s, real, lane);
        st.update(s, scaleLog2, alpha);
        wgmma_wait<0>();
        pin(st.acc);
        pin(s);  // P_j overwrites P_{j-1} only once the product reading it is done
        mbar_arrive(bars.emptyV(sv));
        probabilities();
        ++j;
    }

    if constexpr (!C::Q_REGISTERS) mbar_arrive(bars.emptyQ());  // every score product of the item is done
    const int g = g0 + j, sv = (g - 1) % ST;
    st.rescale(alpha);
    mbar_wait(bars.fullV(sv), ((g - 1) / ST) & 1);
    accumulate(sV + sv * C::KV_ELEMS);
    wgmma_wait<0>();
    pin(st.acc);
    mbar_arrive(bars.emptyV(sv));
    st.template store<T>(oh, work.lseRow, warpRow, work.rowStart, work.rowCount, lane);
    return j;
}

template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_sm90_ws64_fwd(const CUtensorMap* tmQ, const CUtensorMap* tmK, const CUtensorMap* tmK8,
                             const CUtensorMap* tmV, const CUtensorMap* tmV8, T* __restrict__ o,
                             const WorkItems& items, const int2* __restrict__ ranges, float scaleLog2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int ST = C::STAGES;
    extern __shared__ unsigned char smemRaw[];
    T* base = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    // Pipeline p: Q, then STAGES of K and of V; after both pipelines their block descriptions, then their barriers.
    auto sQ = [&](int p) { return base + p * C::PIPE_ELEMS; };
    auto sK = [&](int p) { return sQ(p) + C::Q_ELEMS; };
    auto sV = [&](int p) { return sK(p) + ST * C::KV_ELEMS; };
    KvBlock* blocks = reinterpret_cast<KvBlock*>(base + C::PIPES * C::PIPE_ELEMS);
    const uint32_t barrierBase = smem_addr(blocks + C::PIPES * ST);
    auto bars = [&](int p) { return Barriers<ST>{barrierBase + p * C::BARRIERS * 8}; };

    const int tid = threadIdx.x;
    if (tid == 0) {
#pragma unroll
        for (int p = 0; p < C::PIPES; ++p) {
            const Barriers<ST> b = bars(p);
            mbar_init(b.fullQ(), 1);
            mbar_init(b.emptyQ(), 128);
#pragma unroll
            for (int s = 0; s < ST; ++s) {
                mbar_init(b.fullK(s), 1);
                mbar_init(b.emptyK(s), 128);
                mbar_init(b.fullV(s), 1);
                mbar_init(b.emptyV(s), 128);
            }
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (tid >= C::CONSUMER_THREADS) {
        const int p = (tid - C::CONSUMER_THREADS) >> 5;
        if ((tid & 31) == 0)
            produce64<C>(tmQ, tmK, tmK8, tmV, tmV8, smem_addr(sQ(p)), smem_addr(sK(p)), smem_addr(sV(p)), bars(p),
                         blocks + p * ST, items, ranges, p);
    } else {
        const int ctid = tid, p = ctid >> 7;
        int g = 0, n = 0;
        ItemCursor it;
        it.start(items, 2 * static_cast<int>(blockIdx.x) + p, 2 * static_cast<int>(gridDim.x));
        for (; it.valid(items); it.advance(items), ++n) {
            const BlockWork work = it.work(items);
            g += consume64<T, C>(o + work.headOffset, sQ(p), sK(p), sV(p), bars(p), blocks + p * ST, work, scaleLog2,
                                 ctid & 127, g, n);
        }
    }
#else
    __trap();  // sm_90a only: dispatch picks another kernel elsewhere
#endif
}

// The same body as a template kernel, for the standalone checker's configuration sweeps.
template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 1)
tile_attention_sm90_ws64_fwd_kernel(const __grid_constant__ CUtensorMap tmQ, const __grid_constant__ CUtensorMap tmK,
                                    const __grid_constant__ CUtensorMap tmK8, const __grid_constant__ CUtensorMap tmV,
                                    const __grid_constant__ CUtensorMap tmV8, T* o, float* lse, const int4* qblocks,
                                    const int* listOf, const int* rangeOffsets, const int2* ranges, int slots,
                                    int heads, int S, float scaleLog2, int blockCount, int itemCount) {
    const WorkItems items{qblocks, listOf, rangeOffsets, lse, slots, heads, S, C::D, blockCount, itemCount};
    tile_attention_sm90_ws64_fwd<T, C>(&tmQ, &tmK, &tmK8, &tmV, &tmV8, o, items, ranges, scaleLog2);
}

}  // namespace tileattn

#define TILEATTN_TILE_ATTENTION_SM90_WS64_ENTRY(NAME, T, D)                                                    \
    extern "C" __global__ void __launch_bounds__(320, 1)                                                       \
    NAME(const __grid_constant__ CUtensorMap tmQ, const __grid_constant__ CUtensorMap tmK,                      \
         const __grid_constant__ CUtensorMap tmK8, const __grid_constant__ CUtensorMap tmV,                     \
         const __grid_constant__ CUtensorMap tmV8, T* o, float* lse, const int4* qblocks, const int* listOf,    \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2,            \
         int blockCount, int itemCount) {                                                                      \
        const tileattn::WorkItems items{qblocks, listOf, rangeOffsets, lse, slots, heads, S, D, blockCount,    \
                                        itemCount};                                                            \
        tileattn::tile_attention_sm90_ws64_fwd<T, tileattn::Sm90Ws64Config<D, 3>>(&tmQ, &tmK, &tmK8, &tmV,      \
                                                                                  &tmV8, o, items, ranges,     \
                                                                                  scaleLog2);                  \
    }

TILEATTN_TILE_ATTENTION_SM90_WS64_ENTRY(tileattn_tile_attention_sm90_ws64_fwd_bf16_d64, __nv_bfloat16, 64)
TILEATTN_TILE_ATTENTION_SM90_WS64_ENTRY(tileattn_tile_attention_sm90_ws64_fwd_bf16_d128, __nv_bfloat16, 128)
TILEATTN_TILE_ATTENTION_SM90_WS64_ENTRY(tileattn_tile_attention_sm90_ws64_fwd_f16_d64, __half, 64)
TILEATTN_TILE_ATTENTION_SM90_WS64_ENTRY(tileattn_tile_attention_sm90_ws64_fwd_f16_d128, __half, 128)
