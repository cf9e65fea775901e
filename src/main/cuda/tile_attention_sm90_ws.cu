// Hopper (sm_90a) warp-specialized path of the block-sparse attention forward: the query-block table and KV range
// lists of tile_attention.cu (read its header), with q, k, v given as tensor maps, each block walking work items.
//   - One producer thread copies with the bulk tensor copy engine: the block's Q once, then K and V blocks of BN
//     keys, into a ring of STAGES shared-memory stages (boxes of 64 columns, 128-byte swizzle: the layout the
//     wgmma descriptors read), each completing on its stage's "full" mbarrier by byte count; the consumers hand a
//     stage back on its "empty" mbarrier. So the SM issues almost only the consumers' instructions (7% faster than
//     128 producer threads issuing 16-byte cp.async copies at HunyuanVideo STA 3x3x3, docs/benchmarks.md).
//   - A box may run past its range's end into the next range's keys (masked to -inf, so their P is 0 against
//     finite V) or past the tensor (filled with zeros by the copy engine).
//   - Warpgroups 1 and 2 consume, 64 query rows each (BM = 128). For KV block j a consumer issues S_j = Q K_j^T
//     (wgmma, both operands in shared memory) and O += P_{j-1} V_{j-1} (P from registers) back to back. The source
//     waits for P_{j-1} V_{j-1} after block j's softmax, but ptxas schedules that wait ahead of the softmax (SASS);
//     a variant that forced the written order (a K release whose count read the row sums) measured 2-16% slower,
//     so it was dropped (docs/benchmarks-hopper.md).
//   - The consumers take turns issuing their products (two named barriers), so one's softmax runs while the
//     other's products occupy the tensor cores: 3-14% faster than without turns.
//   - setmaxnreg moves registers from the producer warpgroup (24 per thread) to the consumers (240).
//   - Each block walks work items (query block, head, batch) blockIdx.x, + gridDim.x, ...; the ring's stages and
//     phases run on across items, and the consumers release Q as soon as their last scores are done, so the next
//     item's Q and first K blocks load while they finish the previous item's output. A persistent grid (one block
//     per multiprocessor) pays where items are short and equal (two KV blocks: 18% faster) and loses where they
//     differ in cost (text rows), which the hardware's scheduler balances better than a fixed walk
//     (docs/benchmarks.md, 2026-12-06): the Java wrapper launches one block per item unless asked for it.
// The entry points use BN = 192 and two stages: a 3x3x3 window's ranges of 1152 keys are six whole blocks, and
// 192-key blocks beat 128 at every benchmark shape (docs/benchmarks-hopper.md); the _n128_ ones BN = 128.
// Arguments: tensor maps of q, k and v as [B * heads * S, D] matrices of 16-bit elements (boxes of 64 columns x
// 128 rows for q, x BN rows for k and v, 128-byte swizzle), then o, lse, the plan's tables, slots, heads, S,
// scaleLog2, the query block count, the item count (query blocks x heads x B) and the output's layout (oTokenHeads:
// 0 for planes like q, H for token rows [B, S, H, D]; tile_attention.cuh's output_rows).
// Launch: grid (items) or fewer blocks, 384 threads, dynamic shared memory Sm90WsConfig::SMEM bytes
// (1024 + (128 + 2 * STAGES * BN) * D * 2 + (2 + 4 * STAGES) * 8; 230480 at D = 128 and BN = 192). Built for every
// target, but the body exists only in sm_90a code; elsewhere the entry points trap.
#include <cuda.h>

#include "tileattn/tile_attention.cuh"
#include "tileattn/wgmma.cuh"
#include "tileattn/warp_specialized.cuh"

namespace tileattn {

template <int D_, int BN_, int STAGES_, bool TURNS_ = true>
struct Sm90WsConfig {
    static constexpr int D = D_;
    static constexpr int BN = BN_;  // 64, 128 or 192 (the wgmma N of the score product)
    static constexpr int STAGES = STAGES_;
    static constexpr bool TURNS = TURNS_;  // consumers take turns issuing products (off: only for measurements)
    static constexpr int BM = 128;
    static constexpr int PRODUCER_THREADS = 128;
    static constexpr int CONSUMER_THREADS = 256;
    static constexpr int THREADS = PRODUCER_THREADS + CONSUMER_THREADS;
    static constexpr int PRODUCER_REGISTERS = 24;
    static constexpr int CONSUMER_REGISTERS = 240;  // 128 * 24 + 256 * 240 <= 65536
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int BARRIERS = 2 + 4 * STAGES;
    static constexpr int SMEM = 1024 + (Q_ELEMS + 2 * STAGES * KV_ELEMS) * 2 + BARRIERS * 8;
    static_assert(SMEM <= 227 * 1024, "more shared memory than one Hopper block may have");
};

// The producer thread. Per item: K_0 (once its stage is free), Q (once the consumers released the previous
// item's), then K_j and V_{j-1} for each further block, then the last V. g counts K/V blocks over all items: block
// g takes stage g % STAGES for the (g / STAGES + 1)-th time.
template <typename C>
__device__ __forceinline__ void produce(const CUtensorMap* tmQ, const CUtensorMap* tmK, const CUtensorMap* tmV,
                                        uint32_t sQ, uint32_t sK, uint32_t sV, Barriers<C::STAGES> bars,
                                        const WorkItems& items, const int2* ranges) {
    constexpr int D = C::D, BN = C::BN, ST = C::STAGES;
    constexpr uint32_t STAGE_BYTES = C::KV_ELEMS * 2;
    auto load = [&](const CUtensorMap* map, uint32_t stages, int g, int row, bool isK) {
        const int s = g % ST;
        if (g >= ST) mbar_wait(isK ? bars.emptyK(s) : bars.emptyV(s), ((g / ST) - 1) & 1);
        tma_rows<BN, D>(stages + s * STAGE_BYTES, map, row, isK ? bars.fullK(s) : bars.fullV(s));
    };
    int g = 0, n = 0;
    ItemCursor it;
    it.start(items, static_cast<int>(blockIdx.x), static_cast<int>(gridDim.x));
    for (; it.valid(items); it.advance(items), ++n) {
        const BlockWork work = it.work(items);
        const int planeRow = static_cast<int>(work.headOffset / D), rEnd = work.rangeEnd;
        KvCursor cur;
        cur.start(ranges, work.rangeBegin, rEnd);
        load(tmK, sK, g, planeRow + cur.kb, true);
        if (n > 0) mbar_wait(bars.emptyQ(), (n - 1) & 1);
        tma_rows<C::BM, D>(sQ, tmQ, planeRow + work.rowStart, bars.fullQ());
        int prevKb = cur.kb;
        cur.template advance<BN>(ranges, rEnd);
        for (++g; cur.valid(rEnd); ++g) {
            load(tmK, sK, g, planeRow + cur.kb, true);
            load(tmV, sV, g - 1, planeRow + prevKb, false);
            prevKb = cur.kb;
            cur.template advance<BN>(ranges, rEnd);
        }
        load(tmV, sV, g - 1, planeRow + prevKb, false);
    }
}

// Consumer warpgroup wg (0 or 1) of the block's rows 64 wg .. 64 wg + 63; ctid is its thread's index among the 256
// consumer threads. Turns: consumer wg issues its products after bar.sync on barrier 1 + wg and then signals the
// other's barrier with bar.arrive; consumer 1 opens with one arrive, and so skips its arrive after its last turn,
// which keeps both barriers balanced within each item. The item is the block's n-th, and its K/V blocks are
// g0, g0 + 1, ... of the ring's sequence; returns how many there were.
template <typename T, typename C>
__device__ __forceinline__ int consume(T* o, const T* sQ, const T* sK, const T* sV, Barriers<C::STAGES> bars,
                                       const WorkItems& items, const BlockWork& work, const int2* ranges,
                                       float scaleLog2, int ctid, int g0, int n) {
    constexpr int D = C::D, BN = C::BN, BM = C::BM, ST = C::STAGES;
    constexpr int NT = BN / 8, DT = D / 8, TURN_THREADS = C::CONSUMER_THREADS;
    using State = RowState<NT, DT>;
    const int wg = ctid >> 7, lane = ctid & 31, warpRow = (ctid >> 5) * 16;
    const int groupRow = wg * 64;
    const int myTurn = 1 + wg, otherTurn = 2 - wg;
    const int rEnd = work.rangeEnd;

    State st;
    st.init();
    float s[NT][4];
    uint32_t p[BN / 16][4];
    float alpha[2];

    // k16 step kk of Q K^T: both operands K-major; the step's 32 bytes lie inside one 128-byte swizzle row.
    auto scores = [&](const T* sKs) {
        pin(s);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            const uint64_t a = smem_desc(sQ + (kk >> 2) * BM * 64 + groupRow * 64 + (kk & 3) * 16, 16, 1024);
            const uint64_t b = smem_desc(sKs + (kk >> 2) * BN * 64 + (kk & 3) * 16, 16, 1024);
            wgmma_ss<T, BN>(s, a, b, kk > 0);
        }
        wgmma_commit();
        pin(s);
    };
    // k16 step ks of P V covers keys 16ks .. 16ks+15 (two 1 KiB swizzle atoms); the D columns span D/64 slabs.
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

    auto waitTurn = [&] {
        if constexpr (C::TURNS) named_sync(myTurn, TURN_THREADS);
    };
    auto passTurn = [&](bool last) {
        if constexpr (C::TURNS)
            if (wg == 0 || !last) named_arrive(otherTurn, TURN_THREADS);
    };

    if constexpr (C::TURNS)
        if (wg == 1) named_arrive(1, TURN_THREADS);
    mbar_wait(bars.fullQ(), n & 1);
    KvCursor cur, next;
    cur.start(ranges, work.rangeBegin, rEnd);
    next = cur;
    next.template advance<BN>(ranges, rEnd);

    const int s0 = g0 % ST;
    mbar_wait(bars.fullK(s0), (g0 / ST) & 1);
    waitTurn();
    scores(sK + s0 * C::KV_ELEMS);
    passTurn(!next.valid(rEnd));
    wgmma_wait<0>();
    pin(s);
    mbar_arrive(bars.emptyK(s0));
    State::mask(s, cur.kb, cur.end, lane);
    st.update(s, scaleLog2, alpha);
    probabilities();

    int j = 1;
    while (next.valid(rEnd)) {
        cur = next;
        next.template advance<BN>(ranges, rEnd);
        const int g = g0 + j, sk = g % ST, sv = (g - 1) % ST;
        mbar_wait(bars.fullK(sk), (g / ST) & 1);
        waitTurn();
        scores(sK + sk * C::KV_ELEMS);
        st.rescale(alpha);  // P_{j-1}'s row maxima, before P_{j-1} V_{j-1} accumulates onto O
        mbar_wait(bars.fullV(sv), ((g - 1) / ST) & 1);
        accumulate(sV + sv * C::KV_ELEMS);
        passTurn(!next.valid(rEnd));
        wgmma_wait<1>();
        pin(s);
        mbar_arrive(bars.emptyK(sk));
        State::mask(s, cur.kb, cur.end, lane);
        st.update(s, scaleLog2, alpha);
        wgmma_wait<0>();
        pin(st.acc);
        pin(s);  // P_j overwrites P_{j-1} only once the product reading it is done
        mbar_arrive(bars.emptyV(sv));
        probabilities();
        ++j;
    }

    mbar_arrive(bars.emptyQ());  // every score product of the item is done: the next item's Q may load
    const int g = g0 + j, sv = (g - 1) % ST;
    st.rescale(alpha);
    mbar_wait(bars.fullV(sv), ((g - 1) / ST) & 1);
    accumulate(sV + sv * C::KV_ELEMS);
    wgmma_wait<0>();
    pin(st.acc);
    mbar_arrive(bars.emptyV(sv));  // the next item's blocks reuse this stage too
    const PlaneRows out = output_rows(items.oTokenHeads, work.slice, items.S, D);
    st.template store<T>(o + out.offset, out.stride, work.lseRow, warpRow, work.rowStart, work.rowCount, lane);
    return j;
}

template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_sm90_ws_fwd(const CUtensorMap* tmQ, const CUtensorMap* tmK, const CUtensorMap* tmV, T* __restrict__ o,
                           const WorkItems& items, const int2* __restrict__ ranges, float scaleLog2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int ST = C::STAGES;
    extern __shared__ unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    T* sK = sQ + C::Q_ELEMS;         // [STAGES][BN*D]
    T* sV = sK + ST * C::KV_ELEMS;   // [STAGES][BN*D]
    const Barriers<ST> bars{smem_addr(sV + ST * C::KV_ELEMS)};

    const int tid = threadIdx.x;
    if (tid == 0) {
        mbar_init(bars.fullQ(), 1);
        mbar_init(bars.emptyQ(), C::CONSUMER_THREADS);
#pragma unroll
        for (int s = 0; s < ST; ++s) {
            mbar_init(bars.fullK(s), 1);
            mbar_init(bars.emptyK(s), C::CONSUMER_THREADS);
            mbar_init(bars.fullV(s), 1);
            mbar_init(bars.emptyV(s), C::CONSUMER_THREADS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (tid < C::PRODUCER_THREADS) {
        setmaxnreg_dec<C::PRODUCER_REGISTERS>();
        if (tid == 0) produce<C>(tmQ, tmK, tmV, smem_addr(sQ), smem_addr(sK), smem_addr(sV), bars, items, ranges);
    } else {
        setmaxnreg_inc<C::CONSUMER_REGISTERS>();
        int g = 0, n = 0;
        ItemCursor it;
        it.start(items, static_cast<int>(blockIdx.x), static_cast<int>(gridDim.x));
        for (; it.valid(items); it.advance(items), ++n) {
            const BlockWork work = it.work(items);
            g += consume<T, C>(o, sQ, sK, sV, bars, items, work, ranges, scaleLog2,
                               tid - C::PRODUCER_THREADS, g, n);
        }
    }
#else
    __trap();  // sm_90a only: dispatch picks another kernel elsewhere
#endif
}

// The same body as a template kernel, for the standalone checker's configuration sweeps.
template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 1)
tile_attention_sm90_ws_fwd_kernel(const __grid_constant__ CUtensorMap tmQ, const __grid_constant__ CUtensorMap tmK,
                                  const __grid_constant__ CUtensorMap tmV, T* o, float* lse, const int4* qblocks,
                                  const int* listOf, const int* rangeOffsets, const int2* ranges, int slots, int heads,
                                  int S, float scaleLog2, int blockCount, int itemCount) {
    const WorkItems items{qblocks, listOf, rangeOffsets, lse, slots, heads, S, C::D, blockCount, itemCount};
    tile_attention_sm90_ws_fwd<T, C>(&tmQ, &tmK, &tmV, o, items, ranges, scaleLog2);
}

}  // namespace tileattn

#define TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(NAME, T, D, BN)                                                  \
    extern "C" __global__ void __launch_bounds__(384, 1)                                                       \
    NAME(const __grid_constant__ CUtensorMap tmQ, const __grid_constant__ CUtensorMap tmK,                      \
         const __grid_constant__ CUtensorMap tmV, T* o, float* lse, const int4* qblocks, const int* listOf,     \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2,            \
         int blockCount, int itemCount, int oTokenHeads) {                                                     \
        const tileattn::WorkItems items{qblocks, listOf, rangeOffsets, lse, slots, heads, S, D, blockCount,    \
                                        itemCount, oTokenHeads};                                               \
        tileattn::tile_attention_sm90_ws_fwd<T, tileattn::Sm90WsConfig<D, BN, 2>>(&tmQ, &tmK, &tmV, o, items,    \
                                                                                  ranges, scaleLog2);          \
    }

TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_bf16_d64, __nv_bfloat16, 64, 192)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_bf16_d128, __nv_bfloat16, 128, 192)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_f16_d64, __half, 64, 192)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_f16_d128, __half, 128, 192)

// 128-key blocks, for lists of a few hundred keys that 192 does not divide: cross-attention to Wan's 512 text keys
// takes four whole blocks instead of three with 64 masked keys (16.0 against 16.9 ms a Wan-2.1 step).
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_n128_bf16_d64, __nv_bfloat16, 64, 128)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_n128_bf16_d128, __nv_bfloat16, 128, 128)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_n128_f16_d64, __half, 64, 128)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_n128_f16_d128, __half, 128, 128)
