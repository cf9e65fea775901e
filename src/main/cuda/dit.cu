// The Wan DiT's elementwise and per-row kernels around the cuBLASLt matrix products. Activations are bf16, all
// statistics fp32; the residual stream is fp32 or bf16 (the residual kernels' "_xbf16" entries: diffusers' Wan keeps
// it in the model's dtype, rounding after each add, and it is a third of the residual kernels' memory traffic).
//
// Row kernels take `rows` rows of `width` values; row r belongs to batch entry r / rowsPerBatch, and per-batch
// vectors (modulation shift, scale, gate) are read at b * modBatchStride + j. Two forms of each:
//   - vector kernels (..._w{WARPS}c{CPL}): WARPS warps per row (1 up to width 2048, 4 up to 8192), each lane holding
//     CPL chunks of 8 values in registers, read and written with 16-byte accesses; statistics reduced with warp
//     shuffles (and, with 4 warps, through 4 floats of shared memory). They need widths that are multiples of 8,
//     16-byte aligned pointers and, for the per-head layouts, a power-of-two head dim of at least 8;
//   - generic kernels (one 256-thread block per row, the row staged in shared memory, scalar accesses) for any
//     other shape.
// The Java wrapper (DitKernels) picks the form and the instantiation.
#include <cuda_bf16.h>

#include "tileattn/common.cuh"

namespace {

constexpr int ROW_THREADS = 256;
constexpr int WARPS_PER_BLOCK = ROW_THREADS / 32;
constexpr int VEC = 8;  // values per chunk: 16 bytes of bf16, two float4 of fp32

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block; every thread gets the result. `scratch` holds one float per warp.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    v = warp_sum(v);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    __syncthreads();  // scratch may still be read by a previous reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < warps; ++w) total += scratch[w];
    return total;
}

// Sum over the WARPS warps of one row. With WARPS > 1 it synchronises the block, so every thread of the block
// must reach it (the vector kernels keep threads of rows past the end alive until their last reduction).
template <int WARPS>
__device__ __forceinline__ float row_sum(float v, float* scratch) {
    v = warp_sum(v);
    if constexpr (WARPS == 1) {
        return v;
    } else {
        const int warp = threadIdx.x >> 5, first = warp & ~(WARPS - 1);
        __syncthreads();  // scratch may still be read by a previous reduction
        if ((threadIdx.x & 31) == 0) scratch[warp] = v;
        __syncthreads();
        float total = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) total += scratch[first + w];
        return total;
    }
}

__device__ __forceinline__ void unpack_bf16x8(const uint4 u, float (&v)[VEC]) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < VEC / 2; ++i) {
        const float2 f = __bfloat1622float2(h[i]);
        v[2 * i] = f.x;
        v[2 * i + 1] = f.y;
    }
}

__device__ __forceinline__ uint4 pack_bf16x8(const float (&v)[VEC]) {
    uint4 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < VEC / 2; ++i) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    return u;
}

__device__ __forceinline__ void load_bf16x8(const __nv_bfloat16* p, float (&v)[VEC]) {
    unpack_bf16x8(*reinterpret_cast<const uint4*>(p), v);
}

__device__ __forceinline__ void store_bf16x8(__nv_bfloat16* p, const float (&v)[VEC]) {
    *reinterpret_cast<uint4*>(p) = pack_bf16x8(v);
}

__device__ __forceinline__ void load_f32x8(const float* p, float (&v)[VEC]) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

__device__ __forceinline__ void store_f32x8(float* p, const float (&v)[VEC]) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

__device__ __forceinline__ void load_x8(const float* p, float (&v)[VEC]) { load_f32x8(p, v); }
__device__ __forceinline__ void load_x8(const __nv_bfloat16* p, float (&v)[VEC]) { load_bf16x8(p, v); }
__device__ __forceinline__ void store_x8(float* p, const float (&v)[VEC]) { store_f32x8(p, v); }

// Stores the rounded values and leaves them in v, so that the norm sees the residual as it is kept.
__device__ __forceinline__ void store_x8(__nv_bfloat16* p, float (&v)[VEC]) {
    const uint4 u = pack_bf16x8(v);
    *reinterpret_cast<uint4*>(p) = u;
    unpack_bf16x8(u, v);
}

__device__ __forceinline__ float rounded_to(float, float v) { return v; }
__device__ __forceinline__ float rounded_to(__nv_bfloat16, float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

__device__ __forceinline__ float gelu_tanh(float v) {
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.f + tanhf(u));
}

// The vector residual + LayerNorm (semantics of tileattn_dit_residual_norm below). Chunk i of a row's thread t is
// chunk i * 32 * WARPS + t of the row, so a warp's accesses are contiguous.
template <int WARPS, int CPL, typename X>
__device__ __forceinline__ void residual_norm_rows(X* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                                                   const float* __restrict__ gate, __nv_bfloat16* __restrict__ out,
                                                   const float* __restrict__ shift, const float* __restrict__ scale,
                                                   long long modBatchStride, const float* __restrict__ weight,
                                                   const float* __restrict__ bias, int rows, int rowsPerBatch,
                                                   int width, float eps) {
    __shared__ float scratch[WARPS_PER_BLOCK];
    constexpr int T = 32 * WARPS;
    const int t = threadIdx.x % T;
    const int r = blockIdx.x * (ROW_THREADS / T) + threadIdx.x / T;
    const bool active = r < rows;
    const int chunks = width / VEC;
    const long long off = static_cast<long long>(r) * width;
    const long long mod = active ? static_cast<long long>(r / rowsPerBatch) * modBatchStride : 0;
    // All of the row's loads are issued before the first store, so each lane has up to 2 * CPL of them in flight.
    float v[CPL][VEC];
    uint4 packedY[CPL];
#pragma unroll
    for (int i = 0; i < CPL; ++i) {
        const int c = i * T + t;
        if (active && c < chunks) {
            load_x8(x + off + c * VEC, v[i]);
            if (y != nullptr) packedY[i] = *reinterpret_cast<const uint4*>(y + off + c * VEC);
        }
    }
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < CPL; ++i) {
        const int c = i * T + t;
        if (active && c < chunks) {
            if (y != nullptr) {
                float a[VEC];
                unpack_bf16x8(packedY[i], a);
                if (gate != nullptr) {
                    float g[VEC];
                    load_f32x8(gate + mod + c * VEC, g);
#pragma unroll
                    for (int k = 0; k < VEC; ++k) v[i][k] += g[k] * a[k];
                } else {
#pragma unroll
                    for (int k = 0; k < VEC; ++k) v[i][k] += a[k];
                }
                store_x8(x + off + c * VEC, v[i]);
            }
#pragma unroll
            for (int k = 0; k < VEC; ++k) sum += v[i][k];
        }
    }
    const float mean = row_sum<WARPS>(sum, scratch) / width;
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < CPL; ++i) {
        if (active && i * T + t < chunks) {
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                const float d = v[i][k] - mean;
                sq += d * d;
            }
        }
    }
    const float inv = rsqrtf(row_sum<WARPS>(sq, scratch) / width + eps);
    if (out == nullptr || !active) return;
#pragma unroll
    for (int i = 0; i < CPL; ++i) {
        const int c = i * T + t;
        if (c < chunks) {
            float o[VEC];
#pragma unroll
            for (int k = 0; k < VEC; ++k) o[k] = (v[i][k] - mean) * inv;
            if (weight != nullptr) {
                float w[VEC], b[VEC];
                load_f32x8(weight + c * VEC, w);
                load_f32x8(bias + c * VEC, b);
#pragma unroll
                for (int k = 0; k < VEC; ++k) o[k] = o[k] * w[k] + b[k];
            }
            if (scale != nullptr) {
                float sc[VEC], sh[VEC];
                load_f32x8(scale + mod + c * VEC, sc);
                load_f32x8(shift + mod + c * VEC, sh);
#pragma unroll
                for (int k = 0; k < VEC; ++k) o[k] = o[k] * (1.f + sc[k]) + sh[k];
            }
            store_bf16x8(out + off + c * VEC, o);
        }
    }
}

// Writes one token row's values v (already loaded; inv its RMS factor, 1 without a norm) to heads, normalised by
// weight and rotated when asked, and leaves in v what was stored (rounded to bf16). Chunk i of the row's thread t is
// chunk i * T + t; the row is token p of batch entry b; head dim 1 << dShift.
template <int CPL>
__device__ __forceinline__ void emit_heads_row(float (&v)[CPL][VEC], float inv, const float* __restrict__ weight,
                                               bool rope, const float* __restrict__ cosTable,
                                               const float* __restrict__ sinTable, __nv_bfloat16* __restrict__ out,
                                               int b, int p, int outPlaneRows, int heads, int dShift, int T, int t) {
    const int d = 1 << dShift, chunks = (heads << dShift) / VEC;
    const long long plane0 = static_cast<long long>(b) * heads;
#pragma unroll
    for (int i = 0; i < CPL; ++i) {
        const int c = i * T + t;
        if (c < chunks) {
            const int j = c * VEC, h = j >> dShift, e = j & (d - 1);
            float o[VEC];
            if (weight != nullptr) {
                float w[VEC];
                load_f32x8(weight + j, w);
#pragma unroll
                for (int k = 0; k < VEC; ++k) o[k] = v[i][k] * inv * w[k];
            } else {
#pragma unroll
                for (int k = 0; k < VEC; ++k) o[k] = v[i][k];
            }
            if (rope) {
                const long long at = static_cast<long long>(p) * (d >> 1) + (e >> 1);
                const float4 cs = *reinterpret_cast<const float4*>(cosTable + at);
                const float4 sn = *reinterpret_cast<const float4*>(sinTable + at);
                const float cv[4] = {cs.x, cs.y, cs.z, cs.w}, sv[4] = {sn.x, sn.y, sn.z, sn.w};
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    const float x0 = o[2 * q], x1 = o[2 * q + 1];
                    o[2 * q] = x0 * cv[q] - x1 * sv[q];
                    o[2 * q + 1] = x0 * sv[q] + x1 * cv[q];
                }
            }
            const uint4 u = pack_bf16x8(o);
            *reinterpret_cast<uint4*>(out + ((plane0 + h) * outPlaneRows + p) * d + e) = u;
            unpack_bf16x8(u, v[i]);
        }
    }
}

// Loads row r's chunks (CPL per lane of T threads) and returns their sum of squares.
template <int CPL>
__device__ __forceinline__ float load_heads_row(const __nv_bfloat16* __restrict__ src, float (&v)[CPL][VEC], int chunks,
                                                int T, int t) {
    float sq = 0.f;
#pragma unroll
    for (int i = 0; i < CPL; ++i) {
        const int c = i * T + t;
        if (c < chunks) {
            load_bf16x8(src + c * VEC, v[i]);
#pragma unroll
            for (int k = 0; k < VEC; ++k) sq += v[i][k] * v[i][k];
        }
    }
    return sq;
}

// The vector rows-to-heads of one part (semantics of tileattn_dit_to_heads below), head dim 1 << dShift.
template <int WARPS, int CPL>
__device__ __forceinline__ void to_heads_rows(const __nv_bfloat16* __restrict__ in, long long inRowStride,
                                              const float* __restrict__ weight, bool rope,
                                              const float* __restrict__ cosTable, const float* __restrict__ sinTable,
                                              __nv_bfloat16* __restrict__ out, int rows, int rowsPerBatch,
                                              int outPlaneRows, int heads, int dShift, float eps) {
    __shared__ float scratch[WARPS_PER_BLOCK];
    constexpr int T = 32 * WARPS;
    const int t = threadIdx.x % T;
    const int r = blockIdx.x * (ROW_THREADS / T) + threadIdx.x / T;
    const bool active = r < rows;
    const int width = heads << dShift, chunks = width / VEC;
    float v[CPL][VEC];
    const float sq = active ? load_heads_row<CPL>(in + static_cast<long long>(r) * inRowStride, v, chunks, T, t) : 0.f;
    float inv = 1.f;
    if (weight != nullptr) {  // the same for the whole block: every thread reaches row_sum
        inv = rsqrtf(row_sum<WARPS>(sq, scratch) / width + eps);
    }
    if (!active) return;
    const int b = r / rowsPerBatch, p = r - b * rowsPerBatch;
    emit_heads_row<CPL>(v, inv, weight, rope, cosTable, sinTable, out, b, p, outPlaneRows, heads, dShift, T, t);
}

// Rows-to-heads of one VSA tile of one batch entry (one warp per row, width <= 2048), which also writes the tile's
// mean of what it stored into pooled [B, heads, tiles, d] (fp32), so that VSA's pooling pass need not read q and k
// again. The sums follow VSA's pool kernel (vsa.cu): G = 1024 / d row groups, group g summing rows start + g,
// start + g + G, ... and the column total adding the groups in order, so the means are bit-identical to its. Warp w
// takes groups w, w + 8, ...
template <int CPL>
__device__ __forceinline__ void to_heads_pooled_tile(const __nv_bfloat16* __restrict__ in, long long inRowStride,
                                                     const float* __restrict__ weight, bool rope,
                                                     const float* __restrict__ cosTable,
                                                     const float* __restrict__ sinTable, __nv_bfloat16* __restrict__ out,
                                                     float* __restrict__ pooled, const int* __restrict__ tileStarts,
                                                     int tiles, int rowsPerBatch, int outPlaneRows, int heads,
                                                     int dShift, float eps) {
    extern __shared__ float groupSums[];  // [G][width]
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int tile = blockIdx.x, b = blockIdx.z;
    const int start = tileStarts[tile], end = tileStarts[tile + 1];
    const int width = heads << dShift, chunks = width / VEC, groups = 1024 >> dShift;
    for (int g = warp; g < groups; g += WARPS_PER_BLOCK) {
        float acc[CPL][VEC];
#pragma unroll
        for (int i = 0; i < CPL; ++i)
#pragma unroll
            for (int k = 0; k < VEC; ++k) acc[i][k] = 0.f;
        for (int p = start + g; p < end; p += groups) {
            const long long r = static_cast<long long>(b) * rowsPerBatch + p;
            float v[CPL][VEC];
            const float sq = load_heads_row<CPL>(in + r * inRowStride, v, chunks, 32, lane);
            const float inv = weight != nullptr ? rsqrtf(warp_sum(sq) / width + eps) : 1.f;
            emit_heads_row<CPL>(v, inv, weight, rope, cosTable, sinTable, out, b, p, outPlaneRows, heads, dShift, 32,
                                lane);
#pragma unroll
            for (int i = 0; i < CPL; ++i)
#pragma unroll
                for (int k = 0; k < VEC; ++k) acc[i][k] += v[i][k];
        }
        if (pooled == nullptr) continue;
#pragma unroll
        for (int i = 0; i < CPL; ++i) {
            const int c = i * 32 + lane;
            if (c < chunks) {
#pragma unroll
                for (int k = 0; k < VEC; ++k) groupSums[g * width + c * VEC + k] = acc[i][k];
            }
        }
    }
    if (pooled == nullptr) return;  // the same for the whole block
    __syncthreads();
    // A division, as in the pool kernel (the correctly rounded mean whenever the sum is exact).
    const float count = static_cast<float>(end - start);
    const int d = 1 << dShift;
    for (int col = threadIdx.x; col < width; col += ROW_THREADS) {
        float total = 0.f;
        for (int g = 0; g < groups; ++g) total += groupSums[g * width + col];
        const int h = col >> dShift, e = col & (d - 1);
        pooled[((static_cast<long long>(b) * heads + h) * tiles + tile) * d + e] = total / count;
    }
}

}  // namespace

// A residual + LayerNorm entry point: the arguments of tileattn_dit_residual_norm with residual type X, passed to the
// device function FN (parenthesised where it has template arguments).
#define TILEATTN_RESIDUAL_NORM_ENTRY(NAME, X, FN)                                                                     \
    extern "C" __global__ void __launch_bounds__(ROW_THREADS) NAME(                                                  \
            X* __restrict__ x, const __nv_bfloat16* __restrict__ y, const float* __restrict__ gate,                   \
            __nv_bfloat16* __restrict__ out, const float* __restrict__ shift, const float* __restrict__ scale,        \
            long long modBatchStride, const float* __restrict__ weight, const float* __restrict__ bias, int rows,    \
            int rowsPerBatch, int width, float eps) {                                                                 \
        FN(x, y, gate, out, shift, scale, modBatchStride, weight, bias, rows, rowsPerBatch, width, eps);             \
    }

// Vector residual + LayerNorm, one instantiation per (residual type, warps per row, chunks per lane).
#define TILEATTN_RESIDUAL_NORM(W, C)                                                                                  \
    TILEATTN_RESIDUAL_NORM_ENTRY(tileattn_dit_residual_norm_w##W##c##C, float, (residual_norm_rows<W, C, float>))    \
    TILEATTN_RESIDUAL_NORM_ENTRY(tileattn_dit_residual_norm_xbf16_w##W##c##C, __nv_bfloat16,                         \
                                 (residual_norm_rows<W, C, __nv_bfloat16>))

// Vector rows-to-heads of up to three parts at once (grid.y = part): part i reads in_i (rows of inRowStride),
// RMS-normalises by weight_i when given, rotates by RoPE when bit i of ropeParts is set, and writes out_i. The parts
// share the row count, batch split, output shape and head dim 1 << dShift.
#define TILEATTN_TO_HEADS(W, C)                                                                                       \
    extern "C" __global__ void __launch_bounds__(ROW_THREADS) tileattn_dit_to_heads_w##W##c##C(                      \
            const __nv_bfloat16* in0, const __nv_bfloat16* in1, const __nv_bfloat16* in2, long long inRowStride,     \
            const float* weight0, const float* weight1, const float* weight2, int ropeParts,                          \
            const float* __restrict__ cosTable, const float* __restrict__ sinTable, __nv_bfloat16* out0,              \
            __nv_bfloat16* out1, __nv_bfloat16* out2, int rows, int rowsPerBatch, int outPlaneRows, int heads,         \
            int dShift, float eps) {                                                                                  \
        const int part = blockIdx.y;                                                                                  \
        to_heads_rows<W, C>(part == 0 ? in0 : part == 1 ? in1 : in2, inRowStride,                                    \
                            part == 0 ? weight0 : part == 1 ? weight1 : weight2, ((ropeParts >> part) & 1) != 0,      \
                            cosTable, sinTable, part == 0 ? out0 : part == 1 ? out1 : out2, rows, rowsPerBatch,       \
                            outPlaneRows, heads, dShift, eps);                                                        \
    }

// Rows-to-heads of up to three parts by VSA tile (grid: tiles, part, B; dynamic shared memory (1024 / d) * width
// floats), part i writing its tile means into pooled_i when that is not null (the other arguments as
// tileattn_dit_to_heads_w1c*'s).
#define TILEATTN_TO_HEADS_POOLED(C)                                                                                   \
    extern "C" __global__ void __launch_bounds__(ROW_THREADS) tileattn_dit_to_heads_pooled_c##C(                     \
            const __nv_bfloat16* in0, const __nv_bfloat16* in1, const __nv_bfloat16* in2, long long inRowStride,     \
            const float* weight0, const float* weight1, const float* weight2, int ropeParts,                          \
            const float* __restrict__ cosTable, const float* __restrict__ sinTable, __nv_bfloat16* out0,              \
            __nv_bfloat16* out1, __nv_bfloat16* out2, float* pooled0, float* pooled1, float* pooled2,                 \
            const int* __restrict__ tileStarts, int tiles, int rowsPerBatch, int outPlaneRows, int heads, int dShift,  \
            float eps) {                                                                                              \
        const int part = blockIdx.y;                                                                                  \
        to_heads_pooled_tile<C>(part == 0 ? in0 : part == 1 ? in1 : in2, inRowStride,                                \
                                part == 0 ? weight0 : part == 1 ? weight1 : weight2, ((ropeParts >> part) & 1) != 0,  \
                                cosTable, sinTable, part == 0 ? out0 : part == 1 ? out1 : out2,                       \
                                part == 0 ? pooled0 : part == 1 ? pooled1 : pooled2, tileStarts, tiles,               \
                                rowsPerBatch, outPlaneRows, heads, dShift, eps);                                      \
    }

#define TILEATTN_ROW_KERNELS(W, C) TILEATTN_RESIDUAL_NORM(W, C) TILEATTN_TO_HEADS(W, C)

// One warp per row up to 8 chunks per lane (width 2048); four warps from there (3 to 8 chunks per lane, width 8192).
TILEATTN_ROW_KERNELS(1, 1)
TILEATTN_ROW_KERNELS(1, 2)
TILEATTN_ROW_KERNELS(1, 3)
TILEATTN_ROW_KERNELS(1, 4)
TILEATTN_ROW_KERNELS(1, 5)
TILEATTN_ROW_KERNELS(1, 6)
TILEATTN_ROW_KERNELS(1, 7)
TILEATTN_ROW_KERNELS(1, 8)
TILEATTN_ROW_KERNELS(4, 3)
TILEATTN_ROW_KERNELS(4, 4)
TILEATTN_ROW_KERNELS(4, 5)
TILEATTN_ROW_KERNELS(4, 6)
TILEATTN_ROW_KERNELS(4, 7)
TILEATTN_ROW_KERNELS(4, 8)
TILEATTN_TO_HEADS_POOLED(1)
TILEATTN_TO_HEADS_POOLED(2)
TILEATTN_TO_HEADS_POOLED(3)
TILEATTN_TO_HEADS_POOLED(4)
TILEATTN_TO_HEADS_POOLED(5)
TILEATTN_TO_HEADS_POOLED(6)
TILEATTN_TO_HEADS_POOLED(7)
TILEATTN_TO_HEADS_POOLED(8)

// out[b, n] = bias[n] + sum_k weight[n, k] * f(in[b, k]) for every batch entry b, f = SiLU when siluInput, all fp32:
// the time embedding's small matrix-vector products. One warp per output feature; a weight row is read from memory
// once and from cache for the other batch entries.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
tileattn_dit_small_linear(const float* __restrict__ in, const float* __restrict__ weight,
                          const float* __restrict__ bias, float* __restrict__ out, int batch, int inWidth,
                          int outWidth, int siluInput) {
    const int n = blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= outWidth) return;
    const float* w = weight + static_cast<long long>(n) * inWidth;
    for (int b = 0; b < batch; ++b) {
        const float* a = in + static_cast<long long>(b) * inWidth;
        float acc = 0.f;
        for (int k = lane; k < inWidth; k += 32) {
            float v = a[k];
            if (siluInput) v = v / (1.f + expf(-v));
            acc = fmaf(w[k], v, acc);
        }
        acc = warp_sum(acc);
        if (lane == 0) out[static_cast<long long>(b) * outWidth + n] = acc + bias[n];
    }
}

// The modulation of every block and of the head, [B, layers + 1, chunks, dim]: block l's chunks are
// blockTables[l] ([chunks, dim]) + proj[b] ([chunks, dim]); the head's chunks 0 and 1 (shift, scale) are
// headTable ([2, dim]) + temb[b] ([dim]), its other chunks zero.
extern "C" __global__ void __launch_bounds__(256)
tileattn_dit_modulation(const float* __restrict__ blockTables, const float* __restrict__ headTable,
                        const float* __restrict__ proj, const float* __restrict__ temb, float* __restrict__ mod,
                        int batch, int layers, int chunks, int dim) {
    const long long perLayer = static_cast<long long>(chunks) * dim, perBatch = (layers + 1) * perLayer;
    const long long n = batch * perBatch;
    for (long long idx = tileattn::global_thread_index(); idx < n; idx += tileattn::global_thread_count()) {
        const int b = static_cast<int>(idx / perBatch);
        const long long rest = idx - b * perBatch;
        const int layer = static_cast<int>(rest / perLayer);
        const long long cj = rest - layer * perLayer;
        float v;
        if (layer < layers) {
            v = blockTables[layer * perLayer + cj] + proj[b * perLayer + cj];
        } else if (cj < 2LL * dim) {
            v = headTable[cj] + temb[static_cast<long long>(b) * dim + cj % dim];
        } else {
            v = 0.f;
        }
        mod[idx] = v;
    }
}

// out[r][c] = gate[r] * in[r][c] for a bf16 [rows, cols] matrix, out bf16 or fp32: a gated branch's output weight
// and bias with the gate folded in, so that its product adds gate * (x W^T + b) to the residual itself.
template <typename TO>
__device__ __forceinline__ void gate_rows(const float* __restrict__ gate, const __nv_bfloat16* __restrict__ in,
                                          TO* __restrict__ out, long long rows, int cols) {
    const long long n = rows * cols;
    for (long long i = tileattn::global_thread_index(); i < n; i += tileattn::global_thread_count())
        out[i] = static_cast<TO>(gate[i / cols] * __bfloat162float(in[i]));
}

extern "C" __global__ void __launch_bounds__(256)
tileattn_dit_gate_rows(const float* gate, const __nv_bfloat16* in, __nv_bfloat16* out, long long rows, int cols) {
    gate_rows(gate, in, out, rows, cols);
}

extern "C" __global__ void __launch_bounds__(256)
tileattn_dit_gate_rows_f32(const float* gate, const __nv_bfloat16* in, float* out, long long rows, int cols) {
    gate_rows(gate, in, out, rows, cols);
}

// Generic form. x += (gate ? gate : 1) * y (when y is given), then out = LN(x) [* weight + bias]
// [* (1 + scale) + shift]. LayerNorm uses the biased variance; weight/bias, shift/scale and gate may each be null.
template <typename X>
__device__ __forceinline__ void residual_norm_generic(X* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                                                      const float* __restrict__ gate, __nv_bfloat16* __restrict__ out,
                                                      const float* __restrict__ shift, const float* __restrict__ scale,
                                                      long long modBatchStride, const float* __restrict__ weight,
                                                      const float* __restrict__ bias, int rows, int rowsPerBatch,
                                                      int width, float eps) {
    extern __shared__ float residualRow[];
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const long long off = static_cast<long long>(r) * width;
    const long long mod = static_cast<long long>(r / rowsPerBatch) * modBatchStride;
    float sum = 0.f;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        float v = static_cast<float>(x[off + j]);
        if (y != nullptr) {
            const float add = __bfloat162float(y[off + j]);
            v = rounded_to(X{}, v + (gate != nullptr ? gate[mod + j] * add : add));
            x[off + j] = static_cast<X>(v);
        }
        residualRow[j] = v;
        sum += v;
    }
    const float mean = block_sum(sum, scratch) / width;
    float sq = 0.f;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        const float d = residualRow[j] - mean;
        sq += d * d;
    }
    const float inv = rsqrtf(block_sum(sq, scratch) / width + eps);
    if (out == nullptr) return;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        float v = (residualRow[j] - mean) * inv;
        if (weight != nullptr) v = v * weight[j] + bias[j];
        if (scale != nullptr) v = v * (1.f + scale[mod + j]) + shift[mod + j];
        out[off + j] = __float2bfloat16_rn(v);
    }
}

TILEATTN_RESIDUAL_NORM_ENTRY(tileattn_dit_residual_norm, float, residual_norm_generic<float>)
TILEATTN_RESIDUAL_NORM_ENTRY(tileattn_dit_residual_norm_xbf16, __nv_bfloat16, residual_norm_generic<__nv_bfloat16>)

// Generic form. Token rows [rows, *] (row r at in + r * inRowStride, heads × d values) to heads [B, heads, outPlaneRows, d]:
// token p = r % rowsPerBatch of batch b = r / rowsPerBatch goes to out[((b * heads + h) * outPlaneRows + p) * d].
// With weight: RMSNorm over the whole row (heads × d) times weight. With cos/sin ([rowsPerBatch, d/2] tables):
// rotary embedding of each pair (2i, 2i+1) by the token's angles, after the norm.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
tileattn_dit_to_heads(const __nv_bfloat16* __restrict__ in, long long inRowStride, const float* __restrict__ weight,
                      const float* __restrict__ cosTable, const float* __restrict__ sinTable,
                      __nv_bfloat16* __restrict__ out, int rows, int rowsPerBatch, int outPlaneRows, int heads, int d,
                      float eps) {
    extern __shared__ float row[];
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const int width = heads * d;
    const __nv_bfloat16* src = in + static_cast<long long>(r) * inRowStride;
    float sq = 0.f;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        const float v = __bfloat162float(src[j]);
        row[j] = v;
        sq += v * v;
    }
    float inv = 1.f;
    if (weight != nullptr) {
        inv = rsqrtf(block_sum(sq, scratch) / width + eps);
    } else {
        __syncthreads();
    }
    const int b = r / rowsPerBatch, p = r % rowsPerBatch, pairs = d / 2;
    for (int i = threadIdx.x; i < width / 2; i += blockDim.x) {
        const int j = 2 * i;
        float x0 = row[j] * inv, x1 = row[j + 1] * inv;
        if (weight != nullptr) {
            x0 *= weight[j];
            x1 *= weight[j + 1];
        }
        const int h = j / d, e = j % d;
        if (cosTable != nullptr) {
            const long long t = static_cast<long long>(p) * pairs + e / 2;
            const float c = cosTable[t], s = sinTable[t];
            const float r0 = x0 * c - x1 * s, r1 = x0 * s + x1 * c;
            x0 = r0;
            x1 = r1;
        }
        const long long o = ((static_cast<long long>(b) * heads + h) * outPlaneRows + p) * d + e;
        reinterpret_cast<__nv_bfloat162*>(out + o)[0] = __floats2bfloat162_rn(x0, x1);
    }
}

// x = GELU(x) with the tanh approximation, in place.
extern "C" __global__ void __launch_bounds__(256)
tileattn_dit_gelu_tanh(__nv_bfloat16* x, long long n) {
    for (long long i = tileattn::global_thread_index(); i < n; i += tileattn::global_thread_count()) {
        x[i] = __float2bfloat16_rn(gelu_tanh(__bfloat162float(x[i])));
    }
}

// Latent [B, C, T, H, W] (fp32) to patch rows [B * S, C * pt * ph * pw] (bf16) in the order of `rasterOfPosition`
// (the raster index t * gh * gw + h * gw + w of the token at each sequence position); values channel-major
// (c, i, j, k), matching the patch embedding's Conv3d weight [dim, C, pt, ph, pw].
extern "C" __global__ void __launch_bounds__(256)
tileattn_dit_patchify(const float* __restrict__ latent, __nv_bfloat16* __restrict__ rows,
                      const int* __restrict__ rasterOfPosition, int batch, int channels, int lt, int lh, int lw,
                      int pt, int ph, int pw, int gh, int gw, int s) {
    const int pv = pt * ph * pw, width = channels * pv;
    const long long n = static_cast<long long>(batch) * s * width;
    for (long long idx = tileattn::global_thread_index(); idx < n; idx += tileattn::global_thread_count()) {
        const int col = static_cast<int>(idx % width);
        const long long rowIndex = idx / width;
        const int b = static_cast<int>(rowIndex / s), p = static_cast<int>(rowIndex % s);
        const int raster = rasterOfPosition[p];
        const int tt = raster / (gh * gw), hh = (raster / gw) % gh, ww = raster % gw;
        const int c = col / pv, rem = col % pv, i = rem / (ph * pw), j = (rem / pw) % ph, k = rem % pw;
        const long long voxel = ((static_cast<long long>(b) * channels + c) * lt + tt * pt + i) * lh * lw
                + static_cast<long long>(hh * ph + j) * lw + ww * pw + k;
        rows[idx] = __float2bfloat16_rn(latent[voxel]);
    }
}

// Head rows [B * S, pt * ph * pw * C] (fp32, values ordered (i, j, k, c)) back to a latent [B, C, T, H, W].
extern "C" __global__ void __launch_bounds__(256)
tileattn_dit_unpatchify(const float* __restrict__ rows, float* __restrict__ latent,
                        const int* __restrict__ rasterOfPosition, int batch, int channels, int lt, int lh, int lw,
                        int pt, int ph, int pw, int gh, int gw, int s) {
    const int pv = pt * ph * pw, width = channels * pv;
    const long long n = static_cast<long long>(batch) * s * width;
    for (long long idx = tileattn::global_thread_index(); idx < n; idx += tileattn::global_thread_count()) {
        const int col = static_cast<int>(idx % width);
        const long long rowIndex = idx / width;
        const int b = static_cast<int>(rowIndex / s), p = static_cast<int>(rowIndex % s);
        const int raster = rasterOfPosition[p];
        const int tt = raster / (gh * gw), hh = (raster / gw) % gh, ww = raster % gw;
        const int c = col % channels, rest = col / channels, k = rest % pw, j = (rest / pw) % ph, i = rest / (pw * ph);
        const long long voxel = ((static_cast<long long>(b) * channels + c) * lt + tt * pt + i) * lh * lw
                + static_cast<long long>(hh * ph + j) * lw + ww * pw + k;
        latent[voxel] = rows[idx];
    }
}
