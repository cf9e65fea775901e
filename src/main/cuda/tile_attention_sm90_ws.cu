// Hopper (sm_90a) warp-specialized path of the block-sparse attention forward: the ABI, query-block table and KV
// range lists of tile_attention.cu (read its header), launched with 384 threads instead of 256.
//   - Warpgroup 0 produces: it copies the block's Q once, then K and V blocks of BN keys, into a ring of STAGES
//     shared-memory stages (128-byte swizzle) and publishes each on a "full" mbarrier; the consumers hand a stage
//     back on its "empty" mbarrier. Keys past a range's end are zero-filled and masked to -inf.
//   - Warpgroups 1 and 2 consume, 64 query rows each (BM = 128). For KV block j a consumer issues S_j = Q K_j^T
//     (wgmma, both operands in shared memory) and O += P_{j-1} V_{j-1} (P from registers) back to back. The source
//     waits for P_{j-1} V_{j-1} after block j's softmax, but ptxas schedules that wait ahead of the softmax (SASS);
//     a variant that forced the written order (a K release whose count read the row sums) measured 2-16% slower,
//     so it was dropped (docs/benchmarks-hopper.md).
//   - The consumers take turns issuing their products (two named barriers), so one's softmax runs while the
//     other's products occupy the tensor cores: 3-14% faster than without turns.
//   - setmaxnreg moves registers from the producer (24 per thread) to the consumers (240).
// The producer copies with cp.async rather than the bulk tensor copy engine: a tensor map would change the
// kernel's arguments, and 1D bulk copies cannot write the swizzled layout wgmma reads. A producer thread waits
// for its own copies, fences them into the async proxy and only then arrives on the full barrier.
// The entry points use BN = 192 and two stages: a 3x3x3 window's ranges of 1152 keys are six whole blocks, and
// 192-key blocks beat 128 at every benchmark shape (docs/benchmarks-hopper.md).
// Launch: grid (query blocks, heads, B), 384 threads, dynamic shared memory Sm90WsConfig::SMEM bytes
// (1024 + (128 + 2 * STAGES * BN) * D * 2 + (1 + 4 * STAGES) * 8; 230472 at D = 128). Built for every target, but
// the body exists only in sm_90a code; elsewhere the entry points trap.
#include "tileattn/tile_attention.cuh"
#include "tileattn/wgmma.cuh"

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
    static constexpr int BARRIERS = 1 + 4 * STAGES;
    static constexpr int SMEM = 1024 + (Q_ELEMS + 2 * STAGES * KV_ELEMS) * 2 + BARRIERS * 8;
    static_assert(SMEM <= 227 * 1024, "more shared memory than one Hopper block may have");
};

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// Waits until the phase of the given parity has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    } while (!done);
}

__device__ __forceinline__ void named_sync(int id, int threads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void named_arrive(int id, int threads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

template <int N> __device__ __forceinline__ void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N)); }
template <int N> __device__ __forceinline__ void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N)); }

// The mbarriers, as shared-memory addresses: Q's, then per stage K full, K empty, V full, V empty.
template <int STAGES>
struct Barriers {
    uint32_t base;
    __device__ __forceinline__ uint32_t fullQ() const { return base; }
    __device__ __forceinline__ uint32_t fullK(int s) const { return base + 8 * (1 + s); }
    __device__ __forceinline__ uint32_t emptyK(int s) const { return base + 8 * (1 + STAGES + s); }
    __device__ __forceinline__ uint32_t fullV(int s) const { return base + 8 * (1 + 2 * STAGES + s); }
    __device__ __forceinline__ uint32_t emptyV(int s) const { return base + 8 * (1 + 3 * STAGES + s); }
};

// Copies rows [row0, row0 + ROWS) of a [*, D] matrix into the Swizzle128<ROWS> tile at shared address dst with the
// producer's THREADS threads, zero-filling rows at or past rowLimit (row0 < rowLimit). Each thread keeps one
// 16-byte column chunk and steps down the rows; its row's swizzle phase never changes, so every step is a constant
// offset from the first and the producer needs few registers.
template <int ROWS, int D, int THREADS, typename T>
__device__ __forceinline__ void copy_rows(uint32_t dst, const T* src, int row0, int rowLimit, int tid) {
    constexpr int CHUNKS = D / 8, STEP = THREADS / CHUNKS, PASSES = ROWS / STEP;
    static_assert(THREADS % CHUNKS == 0 && STEP % 8 == 0 && ROWS % STEP == 0, "rows must split into whole swizzle phases");
    const int r = tid / CHUNKS, c = tid % CHUNKS;
    const uint32_t d = dst + Swizzle128<ROWS>::offset(r, c) * 2;
    const T* first = src + static_cast<size_t>(row0) * D;
    const T* g = first + r * D + c * 8;
    const int left = rowLimit - row0 - r;
#pragma unroll
    for (int i = 0; i < PASSES; ++i) {
        const bool real = i * STEP < left;
        cp_async16(d + i * STEP * 128, real ? g + i * STEP * D : first, real ? 16 : 0);
    }
}

// Producer warpgroup. Jobs go out in the order the consumers need them: Q, K_0, then K_j, V_{j-1} for each
// further block, then the last V. Each job is one cp.async group; a job's full barrier is signalled after the next
// job has been issued, so two jobs are in flight while the producer waits for a free stage. That wait never
// blocks on the one unsignalled job: with two or more stages, the release it waits for needs only older jobs.
template <typename T, typename C>
__device__ __forceinline__ void produce(const T* qh, const T* kh, const T* vh, uint32_t sQ, uint32_t sK, uint32_t sV,
                                        Barriers<C::STAGES> bars, const BlockWork& work, const int2* ranges, int tid) {
    constexpr int D = C::D, BN = C::BN, ST = C::STAGES, P = C::PRODUCER_THREADS;
    constexpr uint32_t STAGE_BYTES = C::KV_ELEMS * 2;
    static_assert(ST >= 2, "the producer's one-job lag needs two stages");
    const int rEnd = work.rangeEnd;

    uint32_t pending = bars.fullQ();
    auto publish = [&](uint32_t issued) {
        cp_async_commit();
        cp_async_wait<1>();
        fence_proxy_async();
        mbar_arrive(pending);
        pending = issued;
    };

    copy_rows<C::BM, D, P>(sQ, qh, work.rowStart, work.rowStart + work.rowCount, tid);
    cp_async_commit();
    KvCursor cur;
    cur.start(ranges, work.rangeBegin, rEnd);
    copy_rows<BN, D, P>(sK, kh, cur.kb, cur.end, tid);
    publish(bars.fullK(0));
    int prevKb = cur.kb, prevEnd = cur.end;
    cur.template advance<BN>(ranges, rEnd);
    int j = 1;
    for (; cur.valid(rEnd); ++j) {
        const int sk = j % ST;
        if (j >= ST) mbar_wait(bars.emptyK(sk), ((j / ST) - 1) & 1);
        copy_rows<BN, D, P>(sK + sk * STAGE_BYTES, kh, cur.kb, cur.end, tid);
        publish(bars.fullK(sk));
        const int sv = (j - 1) % ST;
        if (j - 1 >= ST) mbar_wait(bars.emptyV(sv), (((j - 1) / ST) - 1) & 1);
        copy_rows<BN, D, P>(sV + sv * STAGE_BYTES, vh, prevKb, prevEnd, tid);
        publish(bars.fullV(sv));
        prevKb = cur.kb;
        prevEnd = cur.end;
        cur.template advance<BN>(ranges, rEnd);
    }
    const int sv = (j - 1) % ST;
    if (j - 1 >= ST) mbar_wait(bars.emptyV(sv), (((j - 1) / ST) - 1) & 1);
    copy_rows<BN, D, P>(sV + sv * STAGE_BYTES, vh, prevKb, prevEnd, tid);
    publish(bars.fullV(sv));
    cp_async_wait<0>();
    fence_proxy_async();
    mbar_arrive(pending);
}

// Consumer warpgroup wg (0 or 1) of the block's rows 64 wg .. 64 wg + 63; ctid is its thread's index among the 256
// consumer threads. Turns: consumer wg issues its products after bar.sync on barrier 1 + wg and then signals the
// other's barrier with bar.arrive; consumer 1 opens with one arrive, and so skips its arrive after its last turn,
// which keeps both barriers balanced.
template <typename T, typename C>
__device__ __forceinline__ void consume(T* oh, const T* sQ, const T* sK, const T* sV, Barriers<C::STAGES> bars,
                                        const BlockWork& work, const int2* ranges, float scaleLog2, int ctid) {
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
    mbar_wait(bars.fullQ(), 0);
    KvCursor cur, next;
    cur.start(ranges, work.rangeBegin, rEnd);
    next = cur;
    next.template advance<BN>(ranges, rEnd);

    mbar_wait(bars.fullK(0), 0);
    waitTurn();
    scores(sK);
    passTurn(!next.valid(rEnd));
    wgmma_wait<0>();
    pin(s);
    mbar_arrive(bars.emptyK(0));
    State::mask(s, cur.kb, cur.end, lane);
    st.update(s, scaleLog2, alpha);
    probabilities();

    int j = 1;
    while (next.valid(rEnd)) {
        cur = next;
        next.template advance<BN>(ranges, rEnd);
        const int sk = j % ST, sv = (j - 1) % ST;
        mbar_wait(bars.fullK(sk), (j / ST) & 1);
        waitTurn();
        scores(sK + sk * C::KV_ELEMS);
        st.rescale(alpha);  // P_{j-1}'s row maxima, before P_{j-1} V_{j-1} accumulates onto O
        mbar_wait(bars.fullV(sv), ((j - 1) / ST) & 1);
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

    const int sv = (j - 1) % ST;
    st.rescale(alpha);
    mbar_wait(bars.fullV(sv), ((j - 1) / ST) & 1);
    accumulate(sV + sv * C::KV_ELEMS);
    wgmma_wait<0>();
    pin(st.acc);
    st.template store<T>(oh, work.lseRow, warpRow, work.rowStart, work.rowCount, lane);
}

template <typename T, typename C>
__device__ __forceinline__ void
tile_attention_sm90_ws_fwd(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                           float* __restrict__ lse, const int4* __restrict__ qblocks, const int* __restrict__ listOf,
                           const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads,
                           int S, float scaleLog2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int ST = C::STAGES;
    extern __shared__ unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    T* sK = sQ + C::Q_ELEMS;         // [STAGES][BN*D]
    T* sV = sK + ST * C::KV_ELEMS;   // [STAGES][BN*D]
    const Barriers<ST> bars{smem_addr(sV + ST * C::KV_ELEMS)};

    const int tid = threadIdx.x;
    const BlockWork work = block_work(qblocks, listOf, rangeOffsets, slots, heads, S, C::D, lse);
    if (tid == 0) {
        mbar_init(bars.fullQ(), C::PRODUCER_THREADS);
#pragma unroll
        for (int s = 0; s < ST; ++s) {
            mbar_init(bars.fullK(s), C::PRODUCER_THREADS);
            mbar_init(bars.emptyK(s), C::CONSUMER_THREADS);
            mbar_init(bars.fullV(s), C::PRODUCER_THREADS);
            mbar_init(bars.emptyV(s), C::CONSUMER_THREADS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (tid < C::PRODUCER_THREADS) {
        setmaxnreg_dec<C::PRODUCER_REGISTERS>();
        produce<T, C>(q + work.headOffset, k + work.headOffset, v + work.headOffset, smem_addr(sQ), smem_addr(sK),
                      smem_addr(sV), bars, work, ranges, tid);
    } else {
        setmaxnreg_inc<C::CONSUMER_REGISTERS>();
        consume<T, C>(o + work.headOffset, sQ, sK, sV, bars, work, ranges, scaleLog2, tid - C::PRODUCER_THREADS);
    }
#else
    __trap();  // sm_90a only: dispatch picks another kernel elsewhere
#endif
}

// The same body as a template kernel, for the standalone checker's configuration sweeps.
template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, 1)
tile_attention_sm90_ws_fwd_kernel(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks,
                                  const int* listOf, const int* rangeOffsets, const int2* ranges, int slots, int heads,
                                  int S, float scaleLog2) {
    tile_attention_sm90_ws_fwd<T, C>(q, k, v, o, lse, qblocks, listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2);
}

}  // namespace tileattn

#define TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(NAME, T, D)                                                      \
    extern "C" __global__ void __launch_bounds__(384, 1)                                                       \
    NAME(const T* q, const T* k, const T* v, T* o, float* lse, const int4* qblocks, const int* listOf,          \
         const int* rangeOffsets, const int2* ranges, int slots, int heads, int S, float scaleLog2) {           \
        tileattn::tile_attention_sm90_ws_fwd<T, tileattn::Sm90WsConfig<D, 192, 2>>(q, k, v, o, lse, qblocks,     \
                                                                                   listOf, rangeOffsets,       \
                                                                                   ranges, slots, heads, S,    \
                                                                                   scaleLog2);                 \
    }

TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_bf16_d64, __nv_bfloat16, 64)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_bf16_d128, __nv_bfloat16, 128)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_f16_d64, __half, 64)
TILEATTN_TILE_ATTENTION_SM90_WS_ENTRY(tileattn_tile_attention_sm90_ws_fwd_f16_d128, __half, 128)
