// Standalone timing of src/main/cuda/dit.cu's row kernels at the Wan-2.1 1.3B 480p step's shapes (no Java needed):
// 2 x 32,760 token rows of 1536 (12 heads of 128), 2 x 512 text rows. Each kernel runs in its generic form (one
// block per row, as before the vector kernels) and its vector form on the same inputs; the outputs of the two are
// compared (largest difference, relative to the largest value), then each is timed (CUDA events, median of 20
// launches after 3 warm-ups) and its bytes moved per launch give GB/s.
//   nvcc -O3 -std=c++17 -arch=sm_90a -I src/main/cuda/include -o /tmp/dit_rows_bench src/test/cuda/dit_rows_bench.cu
//   /tmp/dit_rows_bench
// Exit status 1 when a vector kernel disagrees with the generic one.
#include "../../main/cuda/dit.cu"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "cuda_check.cuh"
#include "event_timing.cuh"

// The Wan-1.3B vector kernels with each row split over two warps (3 chunks per lane, half the registers, twice the
// warps per SM, a shared-memory step in each reduction): whether more warps in flight pay for the block syncs.
__global__ void __launch_bounds__(ROW_THREADS) bench_residual_norm_w2c3(
        float* __restrict__ x, const __nv_bfloat16* __restrict__ y, const float* __restrict__ gate,
        __nv_bfloat16* __restrict__ out, const float* __restrict__ shift, const float* __restrict__ scale,
        long long modBatchStride, const float* __restrict__ weight, const float* __restrict__ bias, int rows,
        int rowsPerBatch, int width, float eps) {
    residual_norm_rows<2, 3>(x, y, gate, out, shift, scale, modBatchStride, weight, bias, rows, rowsPerBatch, width, eps);
}

__global__ void __launch_bounds__(ROW_THREADS) bench_to_heads_w2c3(
        const __nv_bfloat16* in0, const __nv_bfloat16* in1, const __nv_bfloat16* in2, long long inRowStride,
        const float* weight0, const float* weight1, const float* weight2, int ropeParts, const float* cosTable,
        const float* sinTable, __nv_bfloat16* out0, __nv_bfloat16* out1, __nv_bfloat16* out2, int rows, int rowsPerBatch,
        int outPlaneRows, int heads, int dShift, float eps) {
    const int part = blockIdx.y;
    to_heads_rows<2, 3>(part == 0 ? in0 : part == 1 ? in1 : in2, inRowStride,
                        part == 0 ? weight0 : part == 1 ? weight1 : weight2, ((ropeParts >> part) & 1) != 0, cosTable,
                        sinTable, part == 0 ? out0 : part == 1 ? out1 : out2, rows, rowsPerBatch, outPlaneRows, heads,
                        dShift, eps);
}

namespace {

constexpr int BATCH = 2, S = 32760, HEADS = 12, D = 128, DIM = HEADS * D, ROWS = BATCH * S, TEXT = 512;
constexpr int CHUNKS = 6, LAYERS = 30, FREQ = 256;

__device__ float hash_uniform(unsigned long long i, unsigned seed) {
    unsigned long long h = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return static_cast<float>(h >> 40) / static_cast<float>(1ull << 24);  // [0, 1)
}

__global__ void fill_f32(float* p, long long n, unsigned seed, float mean, float spread) {
    for (long long i = tileattn::global_thread_index(); i < n; i += tileattn::global_thread_count())
        p[i] = mean + spread * (2.f * hash_uniform(i, seed) - 1.f);
}

__global__ void fill_bf16(__nv_bfloat16* p, long long n, unsigned seed, float spread) {
    for (long long i = tileattn::global_thread_index(); i < n; i += tileattn::global_thread_count())
        p[i] = __float2bfloat16_rn(spread * (2.f * hash_uniform(i, seed) - 1.f));
}

template <typename T>
T* alloc(long long n) {
    T* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
    return p;
}

float* f32(long long n, unsigned seed, float mean, float spread) {
    float* p = alloc<float>(n);
    fill_f32<<<1024, 256>>>(p, n, seed, mean, spread);
    return p;
}

__nv_bfloat16* bf16(long long n, unsigned seed, float spread) {
    __nv_bfloat16* p = alloc<__nv_bfloat16>(n);
    fill_bf16<<<1024, 256>>>(p, n, seed, spread);
    return p;
}

std::vector<float> download_f32(const float* p, long long n) {
    std::vector<float> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

std::vector<float> download_bf16(const __nv_bfloat16* p, long long n) {
    std::vector<__nv_bfloat16> raw(n);
    CUDA_CHECK(cudaMemcpy(raw.data(), p, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
    std::vector<float> h(n);
    for (long long i = 0; i < n; ++i) h[i] = __bfloat162float(raw[i]);
    return h;
}

// largest |a - b| over the largest |a|
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, scale = 1e-30;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(b[i])) return INFINITY;
        diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
    }
    return diff / scale;
}

float median_ms(const std::function<void()>& launch) { return median_launch_ms(launch, 3, 20); }

int failures = 0;

void report(const char* what, double bytes, float generic_ms, float vector_ms, double diff, double tol) {
    const bool ok = diff <= tol;
    if (!ok) ++failures;
    std::printf("%-44s %9.3f ms %7.0f GB/s | %9.3f ms %7.0f GB/s | %5.2fx | diff %.2e %s\n", what, generic_ms,
                bytes / generic_ms / 1e6, vector_ms, bytes / vector_ms / 1e6, generic_ms / vector_ms, diff,
                ok ? "ok" : "MISMATCH");
}

}  // namespace

int main() {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("dit_rows_bench on %s: %d x %d token rows of %d (%d heads of %d), %d text rows per batch entry\n",
                prop.name, BATCH, S, DIM, HEADS, D, TEXT);
    std::printf("%-44s %28s | %28s | %6s |\n", "kernel (per launch)", "generic (block per row)", "vector", "speedup");
    const long long n = static_cast<long long>(ROWS) * DIM;
    const int dShift = 7;

    // residual + LayerNorm: x += gate * y, h = LN(x) * (1 + scale) + shift
    float* x0 = f32(n, 1, 0.1f, 2.f);
    float* x = alloc<float>(n);
    __nv_bfloat16* y = bf16(n, 2, 1.f);
    __nv_bfloat16* h = alloc<__nv_bfloat16>(n);
    float* mod = f32(static_cast<long long>(BATCH) * CHUNKS * DIM, 3, 0.f, 0.3f);
    float* lnw = f32(DIM, 4, 1.f, 0.1f);
    float* lnb = f32(DIM, 5, 0.f, 0.1f);
    const long long modStride = static_cast<long long>(CHUNKS) * DIM;
    auto resGeneric = [&](const float* gate, const float* shift, const float* scale, const float* w, const float* b) {
        tileattn_dit_residual_norm<<<ROWS, ROW_THREADS, 4 * DIM>>>(x, y, gate, h, shift, scale, modStride, w, b, ROWS, S,
                                                                    DIM, 1e-6f);
    };
    auto resVector = [&](const float* gate, const float* shift, const float* scale, const float* w, const float* b) {
        tileattn_dit_residual_norm_w1c6<<<ROWS / 8, ROW_THREADS>>>(x, y, gate, h, shift, scale, modStride, w, b, ROWS, S,
                                                                     DIM, 1e-6f);
    };
    {
        const double bytes = static_cast<double>(n) * (4 + 2 + 4 + 2);
        for (int affine = 0; affine < 2; ++affine) {
            const float* gate = affine ? nullptr : mod + 2 * DIM;
            const float* shift = affine ? nullptr : mod + 3 * DIM;
            const float* scale = affine ? nullptr : mod + 4 * DIM;
            const float* w = affine ? lnw : nullptr;
            const float* b = affine ? lnb : nullptr;
            CUDA_CHECK(cudaMemcpy(x, x0, n * 4, cudaMemcpyDeviceToDevice));
            resGeneric(gate, shift, scale, w, b);
            auto gx = download_f32(x, n);
            auto gh = download_bf16(h, n);
            CUDA_CHECK(cudaMemcpy(x, x0, n * 4, cudaMemcpyDeviceToDevice));
            resVector(gate, shift, scale, w, b);
            const double diff = std::max(rel_diff(gx, download_f32(x, n)), rel_diff(gh, download_bf16(h, n)) / 8);
            report(affine ? "residual + LN affine (self-attn branch)" : "residual gated + LN modulated", bytes,
                   median_ms([&] { resGeneric(gate, shift, scale, w, b); }),
                   median_ms([&] { resVector(gate, shift, scale, w, b); }), diff, 1e-3);
        }
        const float* gate = mod + 2 * DIM;
        const float* shift = mod + 3 * DIM;
        const float* scale = mod + 4 * DIM;
        CUDA_CHECK(cudaMemcpy(x, x0, n * 4, cudaMemcpyDeviceToDevice));
        resVector(gate, shift, scale, nullptr, nullptr);
        auto vx = download_f32(x, n);
        auto vh = download_bf16(h, n);
        CUDA_CHECK(cudaMemcpy(x, x0, n * 4, cudaMemcpyDeviceToDevice));
        auto split = [&] {
            bench_residual_norm_w2c3<<<ROWS / 4, ROW_THREADS>>>(x, y, gate, h, shift, scale, modStride, nullptr, nullptr,
                                                                 ROWS, S, DIM, 1e-6f);
        };
        split();
        const double splitDiff = std::max(rel_diff(vx, download_f32(x, n)), rel_diff(vh, download_bf16(h, n)) / 8);
        const float ms = median_ms(split);
        std::printf("  residual gated, rows over 2 warps (3 chunks per lane): %.3f ms (%.0f GB/s), diff %.2e\n", ms,
                    bytes / ms / 1e6, splitDiff);
    }

    // q, k, v to heads: RMSNorm + RoPE for q and k, copy for v
    __nv_bfloat16* qkv = bf16(3 * n, 6, 1.f);
    __nv_bfloat16 *q = alloc<__nv_bfloat16>(n), *k = alloc<__nv_bfloat16>(n), *v = alloc<__nv_bfloat16>(n);
    float* nq = f32(DIM, 7, 1.f, 0.05f);
    float* nk = f32(DIM, 8, 1.f, 0.05f);
    float* cosT = f32(static_cast<long long>(S) * D / 2, 9, 0.f, 1.f);
    float* sinT = f32(static_cast<long long>(S) * D / 2, 10, 0.f, 1.f);
    auto qkvGeneric = [&] {
        tileattn_dit_to_heads<<<ROWS, ROW_THREADS, 4 * DIM>>>(qkv, 3 * DIM, nq, cosT, sinT, q, ROWS, S, S, HEADS, D, 1e-6f);
        tileattn_dit_to_heads<<<ROWS, ROW_THREADS, 4 * DIM>>>(qkv + DIM, 3 * DIM, nk, cosT, sinT, k, ROWS, S, S, HEADS, D,
                                                              1e-6f);
        tileattn_dit_to_heads<<<ROWS, ROW_THREADS, 4 * DIM>>>(qkv + 2 * DIM, 3 * DIM, nullptr, nullptr, nullptr, v, ROWS,
                                                              S, S, HEADS, D, 1e-6f);
    };
    auto qkvVector = [&] {
        tileattn_dit_to_heads_w1c6<<<dim3(ROWS / 8, 3), ROW_THREADS>>>(qkv, qkv + DIM, qkv + 2 * DIM, 3 * DIM, nq, nk,
                                                                       nullptr, 3, cosT, sinT, q, k, v, ROWS, S, S,
                                                                       HEADS, dShift, 1e-6f);
    };
    {
        qkvGeneric();
        auto gq = download_bf16(q, n), gk = download_bf16(k, n), gv = download_bf16(v, n);
        CUDA_CHECK(cudaMemset(q, 0xFF, n * 2));
        CUDA_CHECK(cudaMemset(k, 0xFF, n * 2));
        CUDA_CHECK(cudaMemset(v, 0xFF, n * 2));
        qkvVector();
        const double diff = std::max({rel_diff(gq, download_bf16(q, n)), rel_diff(gk, download_bf16(k, n)),
                                      rel_diff(gv, download_bf16(v, n))});
        const double bytes = static_cast<double>(n) * 2 * 6 + static_cast<double>(S) * D * 4;
        report("q,k RMSNorm+RoPE, v: to heads (3 -> 1 launch)", bytes, median_ms(qkvGeneric), median_ms(qkvVector), diff,
               1e-2);
        const float ms = median_ms([&] {
            bench_to_heads_w2c3<<<dim3(ROWS / 4, 3), ROW_THREADS>>>(qkv, qkv + DIM, qkv + 2 * DIM, 3 * DIM, nq, nk,
                                                                    nullptr, 3, cosT, sinT, q, k, v, ROWS, S, S, HEADS,
                                                                    dShift, 1e-6f);
        });
        const double splitDiff = std::max({rel_diff(gq, download_bf16(q, n)), rel_diff(gk, download_bf16(k, n)),
                                           rel_diff(gv, download_bf16(v, n))});
        std::printf("  q,k,v to heads, rows over 2 warps (3 chunks per lane): %.3f ms (%.0f GB/s), diff %.2e\n", ms,
                    bytes / ms / 1e6, splitDiff);
    }

    // cross q: RMSNorm, to heads
    auto crossGeneric = [&] {
        tileattn_dit_to_heads<<<ROWS, ROW_THREADS, 4 * DIM>>>(h, DIM, nq, nullptr, nullptr, q, ROWS, S, S, HEADS, D, 1e-6f);
    };
    auto crossVector = [&] {
        tileattn_dit_to_heads_w1c6<<<dim3(ROWS / 8, 1), ROW_THREADS>>>(h, nullptr, nullptr, DIM, nq, nullptr, nullptr, 0,
                                                                       nullptr, nullptr, q, nullptr, nullptr, ROWS, S, S,
                                                                       HEADS, dShift, 1e-6f);
    };
    {
        crossGeneric();
        auto gq = download_bf16(q, n);
        CUDA_CHECK(cudaMemset(q, 0xFF, n * 2));
        crossVector();
        report("cross q RMSNorm, to heads", static_cast<double>(n) * 4, median_ms(crossGeneric), median_ms(crossVector),
               rel_diff(gq, download_bf16(q, n)), 1e-2);
    }

    // text keys (RMSNorm) and values into planes padded to S rows
    const long long nt = static_cast<long long>(BATCH) * TEXT * DIM;
    __nv_bfloat16* tk = bf16(nt, 11, 1.f);
    __nv_bfloat16* tv = bf16(nt, 12, 1.f);
    auto textGeneric = [&] {
        tileattn_dit_to_heads<<<BATCH * TEXT, ROW_THREADS, 4 * DIM>>>(tk, DIM, nk, nullptr, nullptr, k, BATCH * TEXT, TEXT,
                                                                       S, HEADS, D, 1e-6f);
        tileattn_dit_to_heads<<<BATCH * TEXT, ROW_THREADS, 4 * DIM>>>(tv, DIM, nullptr, nullptr, nullptr, v, BATCH * TEXT,
                                                                       TEXT, S, HEADS, D, 1e-6f);
    };
    auto textVector = [&] {
        tileattn_dit_to_heads_w1c6<<<dim3(BATCH * TEXT / 8, 2), ROW_THREADS>>>(tk, tv, nullptr, DIM, nk, nullptr, nullptr,
                                                                               0, nullptr, nullptr, k, v, nullptr,
                                                                               BATCH * TEXT, TEXT, S, HEADS, dShift,
                                                                               1e-6f);
    };
    {
        CUDA_CHECK(cudaMemset(k, 0, n * 2));
        CUDA_CHECK(cudaMemset(v, 0, n * 2));
        textGeneric();
        auto gk = download_bf16(k, n), gv = download_bf16(v, n);
        CUDA_CHECK(cudaMemset(k, 0, n * 2));
        CUDA_CHECK(cudaMemset(v, 0, n * 2));
        textVector();
        const double diff = std::max(rel_diff(gk, download_bf16(k, n)), rel_diff(gv, download_bf16(v, n)));
        report("text k RMSNorm, k/v to heads (2 -> 1 launch)", static_cast<double>(nt) * 2 * 4, median_ms(textGeneric),
               median_ms(textVector), diff, 1e-2);
    }

    // the time embedding on the device: three small linears and the modulation tables (no generic form)
    {
        float* tin = f32(BATCH * FREQ, 13, 0.f, 1.f);
        float* w1 = f32(static_cast<long long>(DIM) * FREQ, 14, 0.f, 0.05f);
        float* w2 = f32(static_cast<long long>(DIM) * DIM, 15, 0.f, 0.02f);
        float* wp = f32(static_cast<long long>(CHUNKS) * DIM * DIM, 16, 0.f, 0.02f);
        float* bias = f32(CHUNKS * DIM, 17, 0.f, 0.1f);
        float* t1 = alloc<float>(BATCH * DIM);
        float* temb = alloc<float>(BATCH * DIM);
        float* proj = alloc<float>(BATCH * CHUNKS * DIM);
        float* tables = f32(static_cast<long long>(LAYERS) * CHUNKS * DIM, 18, 0.f, 0.1f);
        float* mods = alloc<float>(static_cast<long long>(BATCH) * (LAYERS + 1) * CHUNKS * DIM);
        auto time = [&] {
            tileattn_dit_small_linear<<<DIM / 8, ROW_THREADS>>>(tin, w1, bias, t1, BATCH, FREQ, DIM, 0);
            tileattn_dit_small_linear<<<DIM / 8, ROW_THREADS>>>(t1, w2, bias, temb, BATCH, DIM, DIM, 1);
            tileattn_dit_small_linear<<<CHUNKS * DIM / 8, ROW_THREADS>>>(temb, wp, bias, proj, BATCH, DIM, CHUNKS * DIM, 1);
            tileattn_dit_modulation<<<1024, 256>>>(tables, tables, proj, temb, mods, BATCH, LAYERS, CHUNKS, DIM);
        };
        const float ms = median_ms(time);
        std::printf("%-44s %28s | %9.3f ms %7.0f GB/s |\n", "time embedding (3 linears + modulation)", "(host before)", ms,
                    (static_cast<double>(DIM) * (FREQ + DIM + CHUNKS * DIM) * 4) / ms / 1e6);
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    std::printf("dit_rows_bench: %s\n", failures == 0 ? "vector kernels agree with the generic ones" : "MISMATCH");
    return failures == 0 ? 0 : 1;
}
