// The read floor of VSA's fine kernels: how fast can a kernel that does nothing but read move the tiles they read?
// VSA's fine forward reads, for every (plane, query tile), the K and V tiles of its k selected KV tiles (64 tokens x
// d = 128 bf16 each, 16 KiB, contiguous in a [plane][token][d] tensor). Its dK/dV kernel reads the same number of Q
// and dO tiles and its dQ kernel the same number of K and V tiles (a one-kernel backward instead adds as many bytes of
// fp32 dQ partials into L2), so forward + backward move at least 3x these bytes, and none of those kernels can run
// faster than this program's best time for them. Issue 6's arithmetic (docs/benchmarks.md) rests on that floor.
//
// Each read pattern runs with two readers: bulk copies (cp.async.bulk into a ring of shared-memory stages, one thread
// issuing, mbarriers completing) and plain 16-byte loads through L2 (ld.global.cg, many warps in flight). The
// patterns: `vsa` (k distinct random tiles per query tile, like VSA's selection on random inputs) and `neighbours`
// (query tile q reads tiles q .. q + k - 1: the blocks in flight share almost all their tiles, the best case for L2).
// Times are CUDA-event medians of 15 launches after 3 warm-ups; READ_FLOOR_ONCE=1 launches each reader once, for
// Nsight Compute.
//   nvcc -O3 -std=c++17 -arch=sm_90a -I src/main/cuda/include -o /tmp/vsa_read_floor src/test/cuda/vsa_read_floor.cu
//   /tmp/vsa_read_floor [tokens heads k]      (default 39936 12 78: Wan-2.1 1.3B 480p padded to tiles)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "event_timing.cuh"
#include "tileattn/warp_specialized.cuh"

using namespace tileattn;

constexpr int TILE_BYTES = 64 * 128 * 2;

// The pair of tiles (K and V, or Q and dO) that read r of this block stands for: item r / k of this block's items,
// entry r % k of its selection.
struct Reads {
    const char* a;
    const char* b;
    const int* selection;  // [items][k] tile indices
    long long planeBytes;
    int items, k, tiles;

    __device__ __forceinline__ int count(int block, int blocks) const {
        return block < items ? ((items - 1 - block) / blocks + 1) * k : 0;
    }
    __device__ __forceinline__ long long offset(int r, int block, int blocks) const {
        const int item = block + (r / k) * blocks;
        const int plane = item / tiles;
        return plane * planeBytes + static_cast<long long>(selection[static_cast<long long>(item) * k + r % k]) * TILE_BYTES;
    }
};

__device__ __forceinline__ void bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

// One thread keeps STAGES pairs of tiles in flight; each landed pair's first word is folded into the sink, so the
// copies have a consumer.
template <int STAGES>
__global__ void __launch_bounds__(32) read_bulk(Reads reads, unsigned* sink) {
    extern __shared__ __align__(128) char stages[];
    __shared__ __align__(8) uint64_t bars[STAGES];
    if (threadIdx.x != 0) return;
    const uint32_t base = smem_addr(stages), barBase = smem_addr(bars);
    for (int s = 0; s < STAGES; ++s) mbar_init(barBase + 8 * s, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    const int n = reads.count(blockIdx.x, gridDim.x);
    auto issue = [&](int r) {
        const int s = r % STAGES;
        const long long off = reads.offset(r, blockIdx.x, gridDim.x);
        mbar_arrive_expect_tx(barBase + 8 * s, 2 * TILE_BYTES);
        bulk_copy(base + s * 2 * TILE_BYTES, reads.a + off, TILE_BYTES, barBase + 8 * s);
        bulk_copy(base + s * 2 * TILE_BYTES + TILE_BYTES, reads.b + off, TILE_BYTES, barBase + 8 * s);
    };
    for (int r = 0; r < STAGES && r < n; ++r) issue(r);
    unsigned acc = 0;
    for (int r = 0; r < n; ++r) {
        const int s = r % STAGES;
        mbar_wait(barBase + 8 * s, (r / STAGES) & 1);
        acc ^= *reinterpret_cast<const unsigned*>(stages + s * 2 * TILE_BYTES + (r & 63) * 4);
        // The next copy into this stage is an async-proxy write after the generic read above.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        if (r + STAGES < n) issue(r + STAGES);
    }
    if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;
}

// THREADS threads load the pair of tiles as 16-byte vectors through L2 (bypassing L1), PAIRS pairs per round.
template <int THREADS, int PAIRS>
__global__ void __launch_bounds__(THREADS) read_loads(Reads reads, unsigned* sink) {
    constexpr int VECTORS = TILE_BYTES / 16 / THREADS;
    const int n = reads.count(blockIdx.x, gridDim.x);
    uint4 acc = make_uint4(0, 0, 0, 0);
    for (int r = 0; r < n; r += PAIRS) {
        uint4 v[PAIRS][2][VECTORS];
#pragma unroll
        for (int p = 0; p < PAIRS; ++p) {
            const long long off = r + p < n ? reads.offset(r + p, blockIdx.x, gridDim.x) : reads.offset(r, blockIdx.x, gridDim.x);
            const uint4* a = reinterpret_cast<const uint4*>(reads.a + off);
            const uint4* b = reinterpret_cast<const uint4*>(reads.b + off);
#pragma unroll
            for (int i = 0; i < VECTORS; ++i) {
                v[p][0][i] = __ldcg(a + i * THREADS + threadIdx.x);
                v[p][1][i] = __ldcg(b + i * THREADS + threadIdx.x);
            }
        }
#pragma unroll
        for (int p = 0; p < PAIRS; ++p)
#pragma unroll
            for (int h = 0; h < 2; ++h)
#pragma unroll
                for (int i = 0; i < VECTORS; ++i) {
                    acc.x ^= v[p][h][i].x; acc.y ^= v[p][h][i].y; acc.z ^= v[p][h][i].z; acc.w ^= v[p][h][i].w;
                }
    }
    if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u) sink[blockIdx.x * THREADS + threadIdx.x] = acc.x;
}

static std::vector<int> selection(const std::string& pattern, int planes, int tiles, int k, std::mt19937& rng) {
    std::vector<int> sel(static_cast<size_t>(planes) * tiles * k);
    std::vector<int> pool(tiles);
    for (int item = 0; item < planes * tiles; ++item) {
        int* row = &sel[static_cast<size_t>(item) * k];
        const int q = item % tiles;
        if (pattern == "vsa") {
            for (int t = 0; t < tiles; ++t) pool[t] = t;
            for (int j = 0; j < k; ++j) {
                std::swap(pool[j], pool[j + rng() % (tiles - j)]);
                row[j] = pool[j];
            }
            std::sort(row, row + k);
        } else {
            for (int j = 0; j < k; ++j) row[j] = (q + j) % tiles;
        }
    }
    return sel;
}

static float median_ms(const std::function<void()>& launch) {
    static const bool once = std::getenv("READ_FLOOR_ONCE") != nullptr;
    if (!once) return median_launch_ms(launch, 3, 15);
    launch();
    CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
}

template <int STAGES>
static float time_bulk(const Reads& reads, unsigned* sink, int blocks) {
    const int smem = STAGES * 2 * TILE_BYTES;
    CUDA_CHECK(cudaFuncSetAttribute(read_bulk<STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return median_ms([&] { read_bulk<STAGES><<<blocks, 32, smem>>>(reads, sink); });
}

template <int THREADS, int PAIRS>
static float time_loads(const Reads& reads, unsigned* sink, int blocks) {
    return median_ms([&] { read_loads<THREADS, PAIRS><<<blocks, THREADS>>>(reads, sink); });
}

int main(int argc, char** argv) {
    const int tokens = argc > 1 ? std::atoi(argv[1]) : 39936;
    const int heads = argc > 2 ? std::atoi(argv[2]) : 12;
    const int k = argc > 3 ? std::atoi(argv[3]) : 78;
    if (tokens % 64 != 0 || k < 1 || k > tokens / 64) {
        std::fprintf(stderr, "tokens must be a multiple of 64 and 1 <= k <= tokens / 64\n");
        return 2;
    }
    const int tiles = tokens / 64;
    const long long planeBytes = static_cast<long long>(tokens) * 128 * 2;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const int sms = prop.multiProcessorCount;

    char *a, *b;
    unsigned* sink;
    CUDA_CHECK(cudaMalloc(&a, planeBytes * heads));
    CUDA_CHECK(cudaMalloc(&b, planeBytes * heads));
    CUDA_CHECK(cudaMemset(a, 0x5a, planeBytes * heads));
    CUDA_CHECK(cudaMemset(b, 0xa5, planeBytes * heads));
    CUDA_CHECK(cudaMalloc(&sink, sizeof(unsigned) * 1024 * sms * 8));
    int* selDevice;
    CUDA_CHECK(cudaMalloc(&selDevice, sizeof(int) * static_cast<size_t>(heads) * tiles * k));

    const double bytes = 2.0 * TILE_BYTES * heads * tiles * k;
    std::printf("%s, %d SMs, L2 %d MiB; %d tokens, %d heads, d = 128, k = %d of %d tiles: %.2f GB per fine kernel\n",
                prop.name, sms, prop.l2CacheSize >> 20, tokens, heads, k, tiles, bytes / 1e9);
    std::printf("%-11s %-22s %9s %9s %22s\n", "pattern", "reader", "ms", "TB/s", "fwd+bwd floor (3x) ms");
    std::mt19937 rng(20261207);
    for (const std::string pattern : {"vsa", "neighbours"}) {
        const std::vector<int> sel = selection(pattern, heads, tiles, k, rng);
        CUDA_CHECK(cudaMemcpy(selDevice, sel.data(), sizeof(int) * sel.size(), cudaMemcpyHostToDevice));
        const Reads reads{a, b, selDevice, planeBytes, heads * tiles, k, tiles};
        float best = 1e30f;
        auto row = [&](const std::string& reader, float ms) {
            best = std::min(best, ms);
            std::printf("%-11s %-22s %9.3f %9.2f %22.2f\n", pattern.c_str(), reader.c_str(), ms, bytes / ms / 1e9, 3 * ms);
        };
        row("bulk 2 stages x 3/SM", time_bulk<2>(reads, sink, 3 * sms));
        row("bulk 3 stages x 2/SM", time_bulk<3>(reads, sink, 2 * sms));
        row("bulk 6 stages x 1/SM", time_bulk<6>(reads, sink, sms));
        row("bulk 4 stages x 1/SM", time_bulk<4>(reads, sink, sms));
        row("bulk 1 stage x 6/SM", time_bulk<1>(reads, sink, 6 * sms));
        row("loads 256 x 1 x 8/SM", time_loads<256, 1>(reads, sink, 8 * sms));
        row("loads 256 x 2 x 4/SM", time_loads<256, 2>(reads, sink, 4 * sms));
        row("loads 128 x 1 x 16/SM", time_loads<128, 1>(reads, sink, 16 * sms));
        row("loads 512 x 1 x 4/SM", time_loads<512, 1>(reads, sink, 4 * sms));
        std::printf("%-11s %-22s %9.3f %9.2f %22.2f   (best)\n", pattern.c_str(), "", best, bytes / best / 1e9, 3 * best);
    }
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    CUDA_CHECK(cudaFree(sink));
    CUDA_CHECK(cudaFree(selDevice));
    return 0;
}
