// fp32 <-> bf16 / fp16 conversion of contiguous tensors, rounding to nearest even (cvt.rn). Eight elements per
// thread and iteration (two 16-byte fp32 accesses, one 16-byte half access) when both pointers are 16-byte
// aligned; otherwise, and for the last n % 8 elements, one element at a time.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "tileattn/common.cuh"

namespace {

struct ToBf16 {
    using Half = __nv_bfloat16;
    using Half2 = __nv_bfloat162;
    __device__ static Half one(float x) { return __float2bfloat16_rn(x); }
    __device__ static Half2 two(float a, float b) { return __floats2bfloat162_rn(a, b); }
    __device__ static float back(Half x) { return __bfloat162float(x); }
    __device__ static float2 back2(Half2 x) { return __bfloat1622float2(x); }
};

struct ToF16 {
    using Half = __half;
    using Half2 = __half2;
    __device__ static Half one(float x) { return __float2half_rn(x); }
    __device__ static Half2 two(float a, float b) { return __floats2half2_rn(a, b); }
    __device__ static float back(Half x) { return __half2float(x); }
    __device__ static float2 back2(Half2 x) { return __half22float2(x); }
};

// Bit copies between a pair of halves and a 32-bit word; memcpy keeps them free of aliasing trouble and
// compiles to register moves.
template <typename Half2>
__device__ __forceinline__ unsigned bits_of(Half2 pair) {
    unsigned word;
    memcpy(&word, &pair, sizeof word);
    return word;
}

template <typename Half2>
__device__ __forceinline__ Half2 pair_of(unsigned word) {
    Half2 pair;
    memcpy(&pair, &word, sizeof pair);
    return pair;
}

template <typename C>
__device__ void narrow(const float* __restrict__ in, typename C::Half* __restrict__ out, long long n) {
    using tileattn::global_thread_count;
    using tileattn::global_thread_index;
    long long done = 0;
    if (tileattn::aligned_to(in, 16) && tileattn::aligned_to(out, 16)) {
        const long long groups = n / 8;
        for (long long g = global_thread_index(); g < groups; g += global_thread_count()) {
            const float4 lo = reinterpret_cast<const float4*>(in)[2 * g];
            const float4 hi = reinterpret_cast<const float4*>(in)[2 * g + 1];
            reinterpret_cast<uint4*>(out)[g] = make_uint4(bits_of(C::two(lo.x, lo.y)), bits_of(C::two(lo.z, lo.w)),
                                                          bits_of(C::two(hi.x, hi.y)), bits_of(C::two(hi.z, hi.w)));
        }
        done = groups * 8;
    }
    for (long long i = done + global_thread_index(); i < n; i += global_thread_count()) {
        out[i] = C::one(in[i]);
    }
}

template <typename C>
__device__ void widen(const typename C::Half* __restrict__ in, float* __restrict__ out, long long n) {
    using tileattn::global_thread_count;
    using tileattn::global_thread_index;
    long long done = 0;
    if (tileattn::aligned_to(in, 16) && tileattn::aligned_to(out, 16)) {
        const long long groups = n / 8;
        for (long long g = global_thread_index(); g < groups; g += global_thread_count()) {
            const uint4 raw = reinterpret_cast<const uint4*>(in)[g];
            using Half2 = typename C::Half2;
            const float2 a = C::back2(pair_of<Half2>(raw.x)), b = C::back2(pair_of<Half2>(raw.y));
            const float2 c = C::back2(pair_of<Half2>(raw.z)), d = C::back2(pair_of<Half2>(raw.w));
            reinterpret_cast<float4*>(out)[2 * g] = make_float4(a.x, a.y, b.x, b.y);
            reinterpret_cast<float4*>(out)[2 * g + 1] = make_float4(c.x, c.y, d.x, d.y);
        }
        done = groups * 8;
    }
    for (long long i = done + global_thread_index(); i < n; i += global_thread_count()) {
        out[i] = C::back(in[i]);
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256)
tileattn_convert_f32_to_bf16(const float* in, __nv_bfloat16* out, long long n) { narrow<ToBf16>(in, out, n); }

extern "C" __global__ void __launch_bounds__(256)
tileattn_convert_f32_to_f16(const float* in, __half* out, long long n) { narrow<ToF16>(in, out, n); }

extern "C" __global__ void __launch_bounds__(256)
tileattn_convert_bf16_to_f32(const __nv_bfloat16* in, float* out, long long n) { widen<ToBf16>(in, out, n); }

extern "C" __global__ void __launch_bounds__(256)
tileattn_convert_f16_to_f32(const __half* in, float* out, long long n) { widen<ToF16>(in, out, n); }
