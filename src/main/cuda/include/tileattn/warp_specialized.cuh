// Pieces of the warp-specialized Hopper kernels (sm_90a): mbarriers, named barriers, register reallocation between
// warpgroups, bulk tensor copies (TMA) into 128-byte-swizzled tiles, and the work items a block walks.
#pragma once

#include <cuda.h>
#include <stdint.h>

#include "tileattn/tile_attention.cuh"

namespace tileattn {

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


template <int N> __device__ __forceinline__ void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N)); }
template <int N> __device__ __forceinline__ void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N)); }

// The mbarriers, as shared-memory addresses: Q full and empty, then per stage K full, K empty, V full, V empty.
template <int STAGES>
struct Barriers {
    uint32_t base;
    __device__ __forceinline__ uint32_t fullQ() const { return base; }
    __device__ __forceinline__ uint32_t emptyQ() const { return base + 8; }
    __device__ __forceinline__ uint32_t fullK(int s) const { return base + 8 * (2 + s); }
    __device__ __forceinline__ uint32_t emptyK(int s) const { return base + 8 * (2 + STAGES + s); }
    __device__ __forceinline__ uint32_t fullV(int s) const { return base + 8 * (2 + 2 * STAGES + s); }
    __device__ __forceinline__ uint32_t emptyV(int s) const { return base + 8 * (2 + 3 * STAGES + s); }
};

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

// ROWS rows from `row` with all D columns (one box per 64-column slab of the Swizzle128 tile), announced to `bar`.
template <int ROWS, int D>
__device__ __forceinline__ void tma_rows(uint32_t dst, const CUtensorMap* map, int row, uint32_t bar) {
    mbar_arrive_expect_tx(bar, ROWS * D * 2);
#pragma unroll
    for (int slab = 0; slab < D / 64; ++slab) tma_load_2d(dst + slab * ROWS * 128, map, slab * 64, row, bar);
}

// The work items of a launch: item = (batch * heads + head) * blockCount + query block.
struct WorkItems {
    const int4* qblocks;
    const int* listOf;
    const int* rangeOffsets;
    float* lse;
    int slots, heads, S, D, blockCount, count;
    int oTokenHeads = 0;  // the output's layout (output_rows)
};

// A block's share of the items, first, first + stride, ..., as (query block, head, batch) kept by steps, not
// divisions.
struct ItemCursor {
    int item, stride, block, head, batch;

    __device__ __forceinline__ void start(const WorkItems& w, int first, int step) {
        item = block = first;
        stride = step;
        head = batch = 0;
        settle(w);
    }
    __device__ __forceinline__ bool valid(const WorkItems& w) const { return item < w.count; }
    __device__ __forceinline__ void advance(const WorkItems& w) {
        item += stride;
        block += stride;
        settle(w);
    }
    __device__ __forceinline__ BlockWork work(const WorkItems& w) const {
        return block_work_of(w.qblocks, w.listOf, w.rangeOffsets, w.slots, w.heads, w.S, w.D, w.lse, block, head,
                             batch);
    }

  private:
    __device__ __forceinline__ void settle(const WorkItems& w) {
        while (block >= w.blockCount) {
            block -= w.blockCount;
            if (++head == w.heads) {
                head = 0;
                ++batch;
            }
        }
    }
};

}  // namespace tileattn
