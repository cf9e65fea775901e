// Candidates for issue 5, measured by the forward checker only ("tma_n192", "tma_mc3_n192"): the warp-specialized
// forward of tile_attention_sm90_ws.cu with its producer replaced by the bulk tensor copy engine. One producer
// thread issues cp.async.bulk.tensor loads of Q, K and V boxes (64 columns x BM or BN rows, 128-byte swizzle: the
// layout the consumers' wgmma descriptors read) that complete on the stages' full mbarriers by byte count; the
// other producer threads do nothing after giving their registers away, so the SM issues only the consumers'
// instructions. The consumers are tile_attention_sm90_ws.cu's, unchanged.
// The kernels take tensor maps of q, k, v as [B * heads * S, D] matrices instead of their pointers, so the Java
// wrapper would need cuTensorMapEncodeTiled before either could replace the ws kernel. A box may run past its
// range's end into the next range's keys (masked to -inf, so their P is 0 against finite V) or past the tensor
// (filled with zeros by the copy engine).
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>

#include <cstdio>
#include <cstdlib>

// Needs tile_attention_sm90_ws.cu included before it (the checker includes every kernel source once).

namespace tileattn {

__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// One box of a 2D tensor map, columns col .. col + 63 of rows row .. row + box rows - 1, into shared memory at dst.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int col, int row, uint32_t bar) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
        ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(row), "r"(bar)
        : "memory");
}

// ROWS rows from `row`, all D columns (D / 64 boxes, one per 64-column slab of the Swizzle128 tile).
template <int ROWS, int D>
__device__ __forceinline__ void tma_rows(uint32_t dst, const CUtensorMap* map, int row, uint32_t bar) {
#pragma unroll
    for (int slab = 0; slab < D / 64; ++slab) tma_load_2d(dst + slab * ROWS * 128, map, slab * 64, row, bar);
}

// The producer thread: the jobs of produce() in tile_attention_sm90_ws.cu (Q, K_0, then K_j and V_{j-1}, then
// the last V), each announced to its full barrier with its byte count before its copies are issued.
template <typename C>
__device__ __forceinline__ void produce_tma(const CUtensorMap* tmQ, const CUtensorMap* tmK, const CUtensorMap* tmV,
                                            int planeRow, uint32_t sQ, uint32_t sK, uint32_t sV,
                                            Barriers<C::STAGES> bars, const BlockWork& work, const int2* ranges) {
    constexpr int D = C::D, BN = C::BN, ST = C::STAGES;
    constexpr uint32_t STAGE_BYTES = C::KV_ELEMS * 2, Q_BYTES = C::Q_ELEMS * 2;
    const int rEnd = work.rangeEnd;

    mbar_arrive_expect_tx(bars.fullQ(), Q_BYTES);
    tma_rows<C::BM, D>(sQ, tmQ, planeRow + work.rowStart, bars.fullQ());
    KvCursor cur;
    cur.start(ranges, work.rangeBegin, rEnd);
    mbar_arrive_expect_tx(bars.fullK(0), STAGE_BYTES);
    tma_rows<BN, D>(sK, tmK, planeRow + cur.kb, bars.fullK(0));
    int prevKb = cur.kb;
    cur.template advance<BN>(ranges, rEnd);
    int j = 1;
    for (; cur.valid(rEnd); ++j) {
        const int sk = j % ST;
        if (j >= ST) mbar_wait(bars.emptyK(sk), ((j / ST) - 1) & 1);
        mbar_arrive_expect_tx(bars.fullK(sk), STAGE_BYTES);
        tma_rows<BN, D>(sK + sk * STAGE_BYTES, tmK, planeRow + cur.kb, bars.fullK(sk));
        const int sv = (j - 1) % ST;
        if (j - 1 >= ST) mbar_wait(bars.emptyV(sv), (((j - 1) / ST) - 1) & 1);
        mbar_arrive_expect_tx(bars.fullV(sv), STAGE_BYTES);
        tma_rows<BN, D>(sV + sv * STAGE_BYTES, tmV, planeRow + prevKb, bars.fullV(sv));
        prevKb = cur.kb;
        cur.template advance<BN>(ranges, rEnd);
    }
    const int sv = (j - 1) % ST;
    if (j - 1 >= ST) mbar_wait(bars.emptyV(sv), (((j - 1) / ST) - 1) & 1);
    mbar_arrive_expect_tx(bars.fullV(sv), STAGE_BYTES);
    tma_rows<BN, D>(sV + sv * STAGE_BYTES, tmV, planeRow + prevKb, bars.fullV(sv));
}

// ---- cluster multicast ("tma_mc3_n192"; with CLUSTER = 1, "tma_n192") ----
// CLUSTER consecutive query blocks that walk the same KV list (the three 128-row blocks of a 384-token STA tile)
// form a cluster: its leader copies each K and V block once from L2 and multicasts it into every member's stage,
// so L2 serves a third of the bytes. Each member's consumers release a stage on their own empty barrier; a
// non-leader's producer thread waits for that and forwards one arrival to the leader's empty barrier (initialised
// for its own consumers plus CLUSTER - 1 forwards), then announces the next bytes on its own full barrier. The
// leader waits on its empty barrier, so it overwrites a stage only once every member is done with it. Q is copied
// by each member for itself. A cluster whose blocks walk different lists, or that holds padding blocks past the
// real ones, runs as tma_n192 does: each member copies for itself (produce_tma).

__device__ __forceinline__ uint32_t cluster_rank() {
    uint32_t r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}

__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
}

// The address of the same shared-memory location in cluster member `rank`.
__device__ __forceinline__ uint32_t map_shared(uint32_t addr, uint32_t rank) {
    uint32_t r;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(addr), "r"(rank));
    return r;
}

__device__ __forceinline__ void mbar_arrive_cluster(uint32_t clusterAddr) {
    asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(clusterAddr) : "memory");
}

__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const CUtensorMap* map, int col, int row,
                                                      uint32_t bar, uint16_t mask) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
        " [%0], [%1, {%2, %3}], [%4], %5;\n"
        ::"r"(dst), "l"(reinterpret_cast<uint64_t>(map)), "r"(col), "r"(row), "r"(bar), "h"(mask)
        : "memory");
}

// The K/V jobs of one stage use: the leader waits for the stage's release by every member and multicasts; a
// non-leader forwards its consumers' release and expects the bytes. `use` counts the stage's uses before this one.
template <int ROWS, int D>
__device__ __forceinline__ void multicast_job(bool leader, uint32_t dst, const CUtensorMap* map, int row, uint32_t full,
                                              uint32_t empty, uint32_t leaderEmpty, int use, uint32_t bytes,
                                              uint16_t mask) {
    if (use > 0) {
        mbar_wait(empty, (use - 1) & 1);
        if (!leader) mbar_arrive_cluster(leaderEmpty);
    }
    mbar_arrive_expect_tx(full, bytes);
    if (leader) {
#pragma unroll
        for (int slab = 0; slab < D / 64; ++slab)
            tma_load_2d_multicast(dst + slab * ROWS * 128, map, slab * 64, row, full, mask);
    }
}

template <typename C, int CLUSTER>
__device__ __forceinline__ void produce_multicast(bool leader, const CUtensorMap* tmQ, const CUtensorMap* tmK,
                                                  const CUtensorMap* tmV, int planeRow, uint32_t sQ, uint32_t sK,
                                                  uint32_t sV, Barriers<C::STAGES> bars, const BlockWork& work,
                                                  const int2* ranges) {
    constexpr int D = C::D, BN = C::BN, ST = C::STAGES;
    constexpr uint32_t STAGE_BYTES = C::KV_ELEMS * 2, Q_BYTES = C::Q_ELEMS * 2;
    constexpr uint16_t MASK = (1u << CLUSTER) - 1;
    const int rEnd = work.rangeEnd;
    auto job = [&](uint32_t stages, const CUtensorMap* map, int kb, int s, int use, uint32_t full, uint32_t empty) {
        multicast_job<BN, D>(leader, stages + s * STAGE_BYTES, map, planeRow + kb, full, empty, map_shared(empty, 0),
                             use, STAGE_BYTES, MASK);
    };

    mbar_arrive_expect_tx(bars.fullQ(), Q_BYTES);
    tma_rows<C::BM, D>(sQ, tmQ, planeRow + work.rowStart, bars.fullQ());
    KvCursor cur;
    cur.start(ranges, work.rangeBegin, rEnd);
    job(sK, tmK, cur.kb, 0, 0, bars.fullK(0), bars.emptyK(0));
    int prevKb = cur.kb;
    cur.template advance<BN>(ranges, rEnd);
    int j = 1;
    for (; cur.valid(rEnd); ++j) {
        job(sK, tmK, cur.kb, j % ST, j / ST, bars.fullK(j % ST), bars.emptyK(j % ST));
        job(sV, tmV, prevKb, (j - 1) % ST, (j - 1) / ST, bars.fullV((j - 1) % ST), bars.emptyV((j - 1) % ST));
        prevKb = cur.kb;
        cur.template advance<BN>(ranges, rEnd);
    }
    job(sV, tmV, prevKb, (j - 1) % ST, (j - 1) / ST, bars.fullV((j - 1) % ST), bars.emptyV((j - 1) % ST));
}

// Launched with clusters of CLUSTER blocks along x; grid.x is the query block count rounded up to a multiple of
// CLUSTER, and blocks at or past realBlocks only take part in the cluster barrier.
template <typename T, typename C, int CLUSTER>
__global__ void __launch_bounds__(C::THREADS, 1)
tile_attention_sm90_tma_fwd_kernel(const __grid_constant__ CUtensorMap tmQ, const __grid_constant__ CUtensorMap tmK,
                                      const __grid_constant__ CUtensorMap tmV, T* __restrict__ o,
                                      float* __restrict__ lse, const int4* __restrict__ qblocks,
                                      const int* __restrict__ listOf, const int* __restrict__ rangeOffsets,
                                      const int2* __restrict__ ranges, int slots, int heads, int S, float scaleLog2,
                                      int realBlocks) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int ST = C::STAGES;
    extern __shared__ unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
    T* sK = sQ + C::Q_ELEMS;
    T* sV = sK + ST * C::KV_ELEMS;
    const Barriers<ST> bars{smem_addr(sV + ST * C::KV_ELEMS)};

    const int tid = threadIdx.x;
    const uint32_t rank = cluster_rank();
    const int first = static_cast<int>(blockIdx.x - rank);
    // Multicast only when every member is a real block walking the same list as the leader.
    bool shared = CLUSTER > 1 && first + CLUSTER <= realBlocks;
    if (shared) {
        const int list0 = listOf[blockIdx.y * slots + qblocks[first].z];
#pragma unroll
        for (int m = 1; m < CLUSTER; ++m) shared &= listOf[blockIdx.y * slots + qblocks[first + m].z] == list0;
    }
    const bool real = static_cast<int>(blockIdx.x) < realBlocks;
    const bool leader = rank == 0;
    if (tid == 0) {
        mbar_init(bars.fullQ(), 1);
#pragma unroll
        for (int s = 0; s < ST; ++s) {
            const int forwards = shared && leader ? CLUSTER - 1 : 0;
            mbar_init(bars.fullK(s), 1);
            mbar_init(bars.emptyK(s), C::CONSUMER_THREADS + forwards);
            mbar_init(bars.fullV(s), 1);
            mbar_init(bars.emptyV(s), C::CONSUMER_THREADS + forwards);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    cluster_sync();  // every member's barriers exist before any multicast or forwarded arrival reaches them

    if (real) {
        const BlockWork work = block_work(qblocks, listOf, rangeOffsets, slots, heads, S, C::D, lse);
        const int planeRow = static_cast<int>(work.headOffset / C::D);
        if (tid < C::PRODUCER_THREADS) {
            setmaxnreg_dec<C::PRODUCER_REGISTERS>();
            if (tid == 0) {
                if (shared) {
                    produce_multicast<C, CLUSTER>(leader, &tmQ, &tmK, &tmV, planeRow, smem_addr(sQ), smem_addr(sK),
                                                  smem_addr(sV), bars, work, ranges);
                } else {
                    produce_tma<C>(&tmQ, &tmK, &tmV, planeRow, smem_addr(sQ), smem_addr(sK), smem_addr(sV), bars,
                                   work, ranges);
                }
            }
        } else {
            setmaxnreg_inc<C::CONSUMER_REGISTERS>();
            consume<T, C>(o + work.headOffset, sQ, sK, sV, bars, work, ranges, scaleLog2, tid - C::PRODUCER_THREADS);
        }
    }
    cluster_sync();  // no member leaves while another may still arrive on its barriers
#else
    __trap();
#endif
}

// Host: a [rows, D] tensor map of 16-bit elements with boxes of 64 columns x boxRows rows, 128-byte swizzle.
inline CUtensorMap tensor_map_rows(const void* base, bool half, unsigned long long rows, int d, int boxRows) {
    static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
        void* fn = nullptr;
        cudaDriverEntryPointQueryResult found;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
                    cudaSuccess || found != cudaDriverEntryPointSuccess) {
            std::fprintf(stderr, "cuTensorMapEncodeTiled is not available from the driver\n");
            std::exit(1);
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
    }();
    CUtensorMap map;
    const cuuint64_t dims[2] = {static_cast<cuuint64_t>(d), rows};
    const cuuint64_t strides[1] = {static_cast<cuuint64_t>(d) * 2};
    const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(boxRows)};
    const cuuint32_t elementStrides[2] = {1, 1};
    const CUresult r = encode(&map, half ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
                              const_cast<void*>(base), dims, strides, box, elementStrides,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        std::fprintf(stderr, "cuTensorMapEncodeTiled failed (%d)\n", static_cast<int>(r));
        std::exit(1);
    }
    return map;
}

}  // namespace tileattn
