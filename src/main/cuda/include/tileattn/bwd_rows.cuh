// Pieces both attention backward families (tile_attention_bwd.cu, tile_attention_bwd_sm90.cu) share.
#pragma once
#include "tileattn/tile_attention.cuh"

namespace tileattn {

// A 4-byte cp.async (lse2 and delta rows); srcBytes 0 zero-fills.
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, int srcBytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes));
}

// Rows warpRow .. warpRow+15 of a block (those below rowCount) from m16n8 accumulators, times scale.
template <typename T, int DT>
__device__ __forceinline__ void store_rows(T* base, const float (&acc)[DT][4], float scale, int warpRow, int rowStart,
                                           int rowCount, int lane) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int local = warpRow + (lane >> 2) + 8 * h;
        if (local < rowCount) {
            T* dst = base + static_cast<size_t>(rowStart + local) * (DT * 8) + 2 * (lane & 3);
#pragma unroll
            for (int dt = 0; dt < DT; ++dt)
                *reinterpret_cast<uint32_t*>(dst + dt * 8) = pack2<T>(acc[dt][2 * h] * scale, acc[dt][2 * h + 1] * scale);
        }
    }
}

}  // namespace tileattn
