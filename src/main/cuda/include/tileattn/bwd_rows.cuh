// Pieces both attention backward families (tile_attention_bwd.cu, tile_attention_bwd_sm90.cu) share.
#pragma once
#include "tileattn/tile_attention.cuh"

namespace tileattn {

// A 4-byte cp.async (lse2 and delta rows); srcBytes 0 zero-fills.
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, int srcBytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes));
}

// Rows warpRow .. warpRow+15 of a block (those below rowCount) from m16n8 accumulators: acc · scale, plus the fp32
// row `add` (D floats, the same for every row of the block) unless it is null.
template <typename T, int DT>
__device__ __forceinline__ void store_rows(T* base, const float (&acc)[DT][4], float scale, const float* add,
                                           int warpRow, int rowStart, int rowCount, int lane) {
    const int local = warpRow + (lane >> 2);
    T* dst = base + static_cast<size_t>(rowStart + local) * (DT * 8) + 2 * (lane & 3);
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
        const float2 extra = add != nullptr ? __ldg(reinterpret_cast<const float2*>(add + dt * 8 + 2 * (lane & 3)))
                                            : make_float2(0.f, 0.f);
#pragma unroll
        for (int h = 0; h < 2; ++h)
            if (local + 8 * h < rowCount)
                *reinterpret_cast<uint32_t*>(dst + 8 * h * (DT * 8) + dt * 8) =
                    pack2<T>(fmaf(acc[dt][2 * h], scale, extra.x), fmaf(acc[dt][2 * h + 1], scale, extra.y));
    }
}

// The row of an fp32 [B * heads, slots, D] table that store_rows adds to a block of `slot` (null: none).
__device__ __forceinline__ const float* slot_row(const float* table, size_t slice, int slots, int slot, int D) {
    return table != nullptr ? table + (slice * slots + slot) * D : nullptr;
}

}  // namespace tileattn
