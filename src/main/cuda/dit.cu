// The Wan DiT's elementwise and per-row kernels around the cuBLASLt matrix products. Activations are bf16, the
// residual stream and all statistics fp32. One thread block per token row for the row kernels (norms over the
// hidden width), the row staged in dynamic shared memory (width floats), grid-stride loops for the rest.
//
// Row kernels take `rows` rows of `width` values; row r belongs to batch entry r / rowsPerBatch, and per-batch
// vectors (modulation shift, scale, gate) are read at b * modBatchStride + j.
#include <cuda_bf16.h>

#include "tileattn/common.cuh"

namespace {

constexpr int ROW_THREADS = 256;

// Sum over the block; every thread gets the result. `scratch` holds one float per warp.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    __syncthreads();  // scratch may still be read by a previous reduction
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < warps; ++w) total += scratch[w];
    return total;
}

__device__ __forceinline__ float gelu_tanh(float v) {
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.f + tanhf(u));
}

}  // namespace

// x += (gate ? gate : 1) * y (when y is given), then out = LN(x) [* weight + bias] [* (1 + scale) + shift].
// LayerNorm uses the biased variance; weight/bias, shift/scale and gate may each be null.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
tileattn_dit_residual_norm(float* __restrict__ x, const __nv_bfloat16* __restrict__ y, const float* __restrict__ gate,
                           __nv_bfloat16* __restrict__ out, const float* __restrict__ shift,
                           const float* __restrict__ scale, long long modBatchStride,
                           const float* __restrict__ weight, const float* __restrict__ bias,
                           int rows, int rowsPerBatch, int width, float eps) {
    extern __shared__ float row[];
    __shared__ float scratch[32];
    const int r = blockIdx.x;
    if (r >= rows) return;
    const long long off = static_cast<long long>(r) * width;
    const long long mod = static_cast<long long>(r / rowsPerBatch) * modBatchStride;
    float sum = 0.f;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        float v = x[off + j];
        if (y != nullptr) {
            const float add = __bfloat162float(y[off + j]);
            v += gate != nullptr ? gate[mod + j] * add : add;
            x[off + j] = v;
        }
        row[j] = v;
        sum += v;
    }
    const float mean = block_sum(sum, scratch) / width;
    float sq = 0.f;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        const float d = row[j] - mean;
        sq += d * d;
    }
    const float inv = rsqrtf(block_sum(sq, scratch) / width + eps);
    if (out == nullptr) return;
    for (int j = threadIdx.x; j < width; j += blockDim.x) {
        float v = (row[j] - mean) * inv;
        if (weight != nullptr) v = v * weight[j] + bias[j];
        if (scale != nullptr) v = v * (1.f + scale[mod + j]) + shift[mod + j];
        out[off + j] = __float2bfloat16_rn(v);
    }
}

// Token rows [rows, *] (row r at in + r * inRowStride, heads × d values) to heads [B, heads, outPlaneRows, d]:
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

// Heads [B, heads, S, d] back to token rows [B * S, heads * d]. One block per token row.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
tileattn_dit_from_heads(const __nv_bfloat16* __restrict__ in, __nv_bfloat16* __restrict__ out, int rows,
                        int rowsPerBatch, int heads, int d) {
    const int r = blockIdx.x;
    if (r >= rows) return;
    const int b = r / rowsPerBatch, p = r % rowsPerBatch, width = heads * d;
    const __nv_bfloat162* src = reinterpret_cast<const __nv_bfloat162*>(in);
    __nv_bfloat162* dst = reinterpret_cast<__nv_bfloat162*>(out + static_cast<long long>(r) * width);
    for (int i = threadIdx.x; i < width / 2; i += blockDim.x) {
        const int j = 2 * i, h = j / d, e = j % d;
        dst[i] = src[(((static_cast<long long>(b) * heads + h) * rowsPerBatch + p) * d + e) / 2];
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
