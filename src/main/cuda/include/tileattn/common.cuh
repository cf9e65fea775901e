// Small device helpers shared by every kernel family.
#pragma once

#include <cstdint>

namespace tileattn {

// 64-bit so that grid-stride loops over tensors of more than 2^31 elements do not wrap.
__device__ __forceinline__ long long global_thread_index() {
    return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long global_thread_count() {
    return static_cast<long long>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ bool aligned_to(const void* p, unsigned bytes) {
    return (reinterpret_cast<std::uintptr_t>(p) & (bytes - 1)) == 0;
}

}  // namespace tileattn
