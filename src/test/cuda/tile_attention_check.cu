// Standalone check and benchmark of the attention forward kernels (tile_attention.cu, tile_attention_sm90.cu,
// tile_attention_sm90_ws.cu; no Java needed).
// TILEATTN_VARIANTS=name,name restricts any mode to those variants; CHECK_CASES="a,b" the shape fuzz to the cases
// whose labels contain a or b.
//   tile_attention_check check      shape fuzz over every kernel variant, against a float64 CPU reference
//   tile_attention_check sanitize   a few tiny cases, for compute-sanitizer
//   tile_attention_check bench [variant...]   the benchmark shapes (sampled rows checked), event-timed medians;
//                                             BENCH_CASES="Hunyuan STA 3x3x3,Wan" runs the cases whose labels contain a part
// Range lists are built here the way the Java wrapper builds them: STA tile lists (clamped window centres),
// adjacent tiles merged into token ranges, the text range appended for video queries, [0, S) for text queries.
// The reference applies the literal STA rule token by token, so list building is checked too.
#include "../../main/cuda/tile_attention.cu"
#include "../../main/cuda/tile_attention_sm90.cu"
#include "../../main/cuda/tile_attention_sm90_ws.cu"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cudaTypedefs.h>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench_cases.cuh"
#include "cuda_check.cuh"
#include "event_timing.cuh"

using namespace tileattn;

struct S3 {
    int t, h, w;
    int get(int a) const { return a == 0 ? t : a == 1 ? h : w; }
    int volume() const { return t * h * w; }
    bool operator<(const S3& o) const { return std::tie(t, h, w) < std::tie(o.t, o.h, o.w); }
    std::string str() const { return std::to_string(t) + "x" + std::to_string(h) + "x" + std::to_string(w); }
};

static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

struct Grid {
    S3 video, tile, n;
    std::vector<int> starts;  // tile i holds tokens [starts[i], starts[i+1])
    Grid(S3 v, S3 t) : video(v), tile(t), n{ceilDiv(v.t, t.t), ceilDiv(v.h, t.h), ceilDiv(v.w, t.w)} {
        starts.assign(n.volume() + 1, 0);
        for (int i = 0; i < n.volume(); ++i) {
            int e = 1;
            for (int a = 0; a < 3; ++a) e *= std::min(tile.get(a), video.get(a) - coord(i, a) * tile.get(a));
            starts[i + 1] = starts[i] + e;
        }
    }
    int tiles() const { return n.volume(); }
    int coord(int i, int a) const { return a == 0 ? i / (n.h * n.w) : a == 1 ? i / n.w % n.h : i % n.w; }
    int index(int a, int b, int c) const { return (a * n.h + b) * n.w + c; }
};

static int windowStart(int q, int k, int n) {
    if (k >= n) return 0;
    int half = k / 2;
    return std::clamp(q, half, n - 1 - half) - half;
}

// The literal STA rule, used by the reference only.
static bool staAllows(const Grid& g, S3 win, int qt, int kt) {
    for (int a = 0; a < 3; ++a) {
        int k = win.get(a), n = g.n.get(a);
        if (k == n) continue;
        int half = k / 2;
        int c = std::clamp(g.coord(qt, a), half, n - 1 - half);
        if (std::abs(c - g.coord(kt, a)) > half) return false;
    }
    return true;
}

struct Plan {
    std::vector<int4> qblocks;
    std::vector<int> listOf, rangeOffsets;
    std::vector<int2> ranges;
    int slots = 0;
    std::vector<double> attendedPerHead;  // sum over query rows of attended keys
};

static Plan buildPlan(const Grid& g, int textLen, const std::vector<S3>& windows, int bm) {
    Plan p;
    const int tiles = g.tiles(), V = g.starts[tiles], S = V + textLen;
    p.slots = tiles + (textLen > 0 ? 1 : 0);
    p.rangeOffsets.push_back(0);
    std::map<S3, int> firstList;
    std::vector<std::vector<long long>> keysOfList;
    for (size_t h = 0; h < windows.size(); ++h) {
        S3 w = windows[h];
        auto it = firstList.find(w);
        int base;
        if (it == firstList.end()) {
            base = static_cast<int>(p.rangeOffsets.size()) - 1;
            firstList[w] = base;
            for (int q = 0; q < tiles; ++q) {
                int st = windowStart(g.coord(q, 0), w.t, g.n.t), sh = windowStart(g.coord(q, 1), w.h, g.n.h),
                    sw = windowStart(g.coord(q, 2), w.w, g.n.w);
                std::vector<int2> rs;
                for (int a = 0; a < std::min(w.t, g.n.t); ++a)
                    for (int b = 0; b < std::min(w.h, g.n.h); ++b)
                        for (int c = 0; c < std::min(w.w, g.n.w); ++c) {
                            int kt = g.index(st + a, sh + b, sw + c);
                            int2 r{g.starts[kt], g.starts[kt + 1]};
                            if (!rs.empty() && rs.back().y == r.x) rs.back().y = r.y;
                            else rs.push_back(r);
                        }
                if (textLen > 0) {
                    if (rs.back().y == V) rs.back().y = S;
                    else rs.push_back({V, S});
                }
                for (auto r : rs) p.ranges.push_back(r);
                p.rangeOffsets.push_back(static_cast<int>(p.ranges.size()));
            }
            if (textLen > 0) {
                p.ranges.push_back({0, S});
                p.rangeOffsets.push_back(static_cast<int>(p.ranges.size()));
            }
        } else {
            base = it->second;
        }
        for (int s = 0; s < p.slots; ++s) p.listOf.push_back(base + s);
    }
    if (textLen > 0)
        for (int r = V; r < S; r += bm) p.qblocks.push_back({r, std::min(bm, S - r), tiles, 0});
    for (int q = 0; q < tiles; ++q)
        for (int r = g.starts[q]; r < g.starts[q + 1]; r += bm) p.qblocks.push_back({r, std::min(bm, g.starts[q + 1] - r), q, 0});
    for (size_t h = 0; h < windows.size(); ++h) {
        double total = 0;
        for (auto qb : p.qblocks) {
            int l = p.listOf[h * p.slots + qb.z];
            long long keys = 0;
            for (int i = p.rangeOffsets[l]; i < p.rangeOffsets[l + 1]; ++i) keys += p.ranges[i].y - p.ranges[i].x;
            total += static_cast<double>(keys) * qb.y;
        }
        p.attendedPerHead.push_back(total);
    }
    return p;
}

// ---- element types on the host ----
template <typename T> float toFloat(uint16_t bits);
template <> float toFloat<__nv_bfloat16>(uint16_t b) {
    uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
template <> float toFloat<__half>(uint16_t b) {
    __half_raw r;
    r.x = b;
    return __half2float(__half(r));
}

__device__ __forceinline__ float hashUniform(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * (1.0f / 16777216.0f) * 2.f - 1.f;
}

template <typename T>
__global__ void fillRandom(T* p, size_t n, uint64_t seed, float amp) {
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
        p[i] = static_cast<T>(hashUniform(seed, i) * amp);
}

__global__ void fillBits16(uint16_t* p, size_t n, uint16_t bits) {
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) p[i] = bits;
}
__global__ void fillFloat(float* p, size_t n, float x) {
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) p[i] = x;
}

template <typename T>
__global__ void countNonFinite(const T* p, size_t n, unsigned long long* count) {
    unsigned long long c = 0;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
        if (!isfinite(static_cast<float>(p[i]))) ++c;
    if (c) atomicAdd(count, c);
}

// ---- kernel variants ----
struct Launcher {
    int bm, threads, smem;
    std::function<void(const void*, const void*, const void*, void*, float*, const int4*, const int*, const int*,
                       const int2*, int, int, int, float, dim3, cudaStream_t)> run;
};

// Sm90Ws runs the warp-specialized kernel on a persistent grid, Sm90WsGrid with one block per work item.
enum class Kind { Portable, Sm90, Sm90Ws, Sm90WsGrid };

// A [rows, D] tensor map of 16-bit elements with boxes of 64 columns x boxRows rows, 128-byte swizzle: what
// TileAttentionKernel.java encodes for the warp-specialized kernel.
static CUtensorMap tensorMapRows(const void* base, bool half, unsigned long long rows, int d, int boxRows) {
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

// The warp-specialized kernel takes tensor maps of q, k, v and walks the work items (grid.x * grid.y * grid.z of
// the other kernels' grid) from a persistent grid of one block per multiprocessor, or with PERSISTENT false from
// one block per item. TILEATTN_WS_BLOCKS=n caps the persistent grid at n blocks, so that the tiny cases of the
// fuzz and the sanitizer runs also make each block walk several items.
template <typename T, typename C, bool PERSISTENT>
Launcher makeWsLauncher() {
    auto kernel = tile_attention_sm90_ws_fwd_kernel<T, C>;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    int sms = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    if (const char* cap = std::getenv("TILEATTN_WS_BLOCKS"); cap != nullptr && std::atoi(cap) > 0)
        sms = std::min(sms, std::atoi(cap));
    Launcher l;
    l.bm = C::BM;
    l.threads = C::THREADS;
    l.smem = C::SMEM;
    l.run = [kernel, sms](const void* q, const void* k, const void* v, void* o, float* lse, const int4* qb,
                          const int* lo, const int* ro, const int2* rg, int slots, int heads, int S, float sl2,
                          dim3 grid, cudaStream_t st) {
        constexpr bool half = std::is_same_v<T, __half>;
        const unsigned long long rows = static_cast<unsigned long long>(grid.z) * heads * S;
        const CUtensorMap tq = tensorMapRows(q, half, rows, C::D, C::BM);
        const CUtensorMap tk = tensorMapRows(k, half, rows, C::D, C::BN);
        const CUtensorMap tv = tensorMapRows(v, half, rows, C::D, C::BN);
        const int items = static_cast<int>(grid.x * grid.y * grid.z);
        const int blocks = PERSISTENT ? std::min(items, sms) : items;
        kernel<<<blocks, C::THREADS, C::SMEM, st>>>(tq, tk, tv, static_cast<T*>(o), lse, qb, lo, ro, rg, slots, heads,
                                                    S, sl2, static_cast<int>(grid.x), items);
    };
    return l;
}

template <typename T, typename C, Kind K>
Launcher makeLauncher() {
    if constexpr (K == Kind::Sm90Ws || K == Kind::Sm90WsGrid) {
        return makeWsLauncher<T, C, K == Kind::Sm90Ws>();
    } else {
        void (*kernel)(const T*, const T*, const T*, T*, float*, const int4*, const int*, const int*, const int2*, int, int,
                       int, float);
        if constexpr (K == Kind::Sm90) kernel = tile_attention_sm90_fwd_kernel<T, C>;
        else kernel = tile_attention_fwd_kernel<T, C>;
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
        Launcher l;
        l.bm = C::BM;
        l.threads = C::THREADS;
        l.smem = C::SMEM;
        l.run = [kernel](const void* q, const void* k, const void* v, void* o, float* lse, const int4* qb, const int* lo,
                         const int* ro, const int2* rg, int slots, int heads, int S, float sl2, dim3 grid, cudaStream_t st) {
            kernel<<<grid, C::THREADS, C::SMEM, st>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                                       static_cast<const T*>(v), static_cast<T*>(o), lse, qb, lo, ro, rg,
                                                       slots, heads, S, sl2);
        };
        return l;
    }
}

struct Variant {
    std::string name;
    Launcher bf16[2], f16[2];  // [d64, d128]
};

template <Kind K, typename C64, typename C128>
Variant makeVariant(const char* name) {
    Variant v;
    v.name = name;
    v.bf16[0] = makeLauncher<__nv_bfloat16, C64, K>();
    v.bf16[1] = makeLauncher<__nv_bfloat16, C128, K>();
    v.f16[0] = makeLauncher<__half, C64, K>();
    v.f16[1] = makeLauncher<__half, C128, K>();
    return v;
}

static bool wanted(const std::string& name) {
    const char* env = std::getenv("TILEATTN_VARIANTS");
    if (env == nullptr || *env == 0) return true;
    std::string list = std::string(",") + env + ",";
    return list.find("," + name + ",") != std::string::npos;
}

static std::vector<Variant> allVariants() {
    std::vector<Variant> v;
    if (wanted("mma_n64")) v.push_back(makeVariant<Kind::Portable, PortableConfig<64, 64>, PortableConfig<128, 64>>("mma_n64"));
    int major = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
    if (major == 9) {
        if (wanted("wgmma_n64")) v.push_back(makeVariant<Kind::Sm90, Sm90Config<64, 64>, Sm90Config<128, 64>>("wgmma_n64"));
        if (wanted("ws_n128")) v.push_back(makeVariant<Kind::Sm90Ws, Sm90WsConfig<64, 128, 2>, Sm90WsConfig<128, 128, 2>>("ws_n128"));
        if (wanted("ws_n128_s3"))
            v.push_back(makeVariant<Kind::Sm90Ws, Sm90WsConfig<64, 128, 3>, Sm90WsConfig<128, 128, 3>>("ws_n128_s3"));
        if (wanted("ws_n192"))  // the entry points' configuration
            v.push_back(makeVariant<Kind::Sm90Ws, Sm90WsConfig<64, 192, 2>, Sm90WsConfig<128, 192, 2>>("ws_n192"));
        if (wanted("ws_n192_grid"))  // the same, one block per work item instead of a persistent grid
            v.push_back(makeVariant<Kind::Sm90WsGrid, Sm90WsConfig<64, 192, 2>, Sm90WsConfig<128, 192, 2>>("ws_n192_grid"));
        if (wanted("wgmma_bm64"))  // the wgmma kernel's 64-row entries (VSA's fine forward)
            v.push_back(makeVariant<Kind::Sm90, Sm90Config<64, 64, 64>, Sm90Config<128, 64, 64>>("wgmma_bm64"));
        if (wanted("wgmma_bm64q"))  // the same with the query rows as register operands of S = Q K^T
            v.push_back(makeVariant<Kind::Sm90, Sm90Config<64, 64, 64, true>, Sm90Config<128, 64, 64, true>>("wgmma_bm64q"));
        if (wanted("ws_n192_noturns"))
            v.push_back(makeVariant<Kind::Sm90Ws, Sm90WsConfig<64, 192, 2, false>, Sm90WsConfig<128, 192, 2, false>>("ws_n192_noturns"));
    }
    return v;
}

// ---- one case ----
struct Case {
    std::string label;
    S3 video, tile;
    std::vector<S3> windows;  // one per head
    int text, d, batch;
    bool fp16;
    double scale;  // <= 0: 1/sqrt(d)
    int sampleRows;  // 0: check every row
    int checkHeads;  // (b,h) samples checked; 0: all
};

struct Device {
    void *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr;
    float* lse = nullptr;
    int4* qb = nullptr;
    int *lo = nullptr, *ro = nullptr;
    int2* rg = nullptr;
    unsigned long long* bad = nullptr;
};

template <typename T>
static std::vector<uint16_t> download(const void* base, size_t offset, size_t count) {
    std::vector<uint16_t> h(count);
    CUDA_CHECK(cudaMemcpy(h.data(), static_cast<const uint16_t*>(base) + offset, count * 2, cudaMemcpyDeviceToHost));
    return h;
}

struct Result {
    double maxRel = 0, maxLseErr = 0, ms = 0, tflops = 0;
    unsigned long long nonFinite = 0;
    bool ok = false;
};

template <typename T>
static Result runCase(const Case& c, const Variant& var, int reps, uint64_t seed) {
    const Launcher& L = (c.fp16 ? (const Launcher*)var.f16 : (const Launcher*)var.bf16)[c.d == 128 ? 1 : 0];
    Grid g(c.video, c.tile);
    const int heads = static_cast<int>(c.windows.size());
    const int V = g.starts[g.tiles()], S = V + c.text, D = c.d, B = c.batch;
    Plan p = buildPlan(g, c.text, c.windows, L.bm);
    const size_t n = static_cast<size_t>(B) * heads * S * D;
    Device dv;
    CUDA_CHECK(cudaMalloc(&dv.q, n * 2));
    CUDA_CHECK(cudaMalloc(&dv.k, n * 2));
    CUDA_CHECK(cudaMalloc(&dv.v, n * 2));
    CUDA_CHECK(cudaMalloc(&dv.o, n * 2));
    CUDA_CHECK(cudaMalloc(&dv.lse, static_cast<size_t>(B) * heads * S * 4));
    CUDA_CHECK(cudaMalloc(&dv.qb, p.qblocks.size() * sizeof(int4)));
    CUDA_CHECK(cudaMalloc(&dv.lo, p.listOf.size() * 4));
    CUDA_CHECK(cudaMalloc(&dv.ro, p.rangeOffsets.size() * 4));
    CUDA_CHECK(cudaMalloc(&dv.rg, p.ranges.size() * sizeof(int2)));
    CUDA_CHECK(cudaMalloc(&dv.bad, 8));
    CUDA_CHECK(cudaMemcpy(dv.qb, p.qblocks.data(), p.qblocks.size() * sizeof(int4), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dv.lo, p.listOf.data(), p.listOf.size() * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dv.ro, p.rangeOffsets.data(), p.rangeOffsets.size() * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dv.rg, p.ranges.data(), p.ranges.size() * sizeof(int2), cudaMemcpyHostToDevice));
    fillRandom<T><<<1024, 256>>>(static_cast<T*>(dv.q), n, seed * 3 + 1, 2.f);
    fillRandom<T><<<1024, 256>>>(static_cast<T*>(dv.k), n, seed * 3 + 2, 2.f);
    fillRandom<T><<<1024, 256>>>(static_cast<T*>(dv.v), n, seed * 3 + 3, 1.f);
    fillBits16<<<1024, 256>>>(static_cast<uint16_t*>(dv.o), n, 0xFFFF);  // NaN in bf16 and fp16
    fillFloat<<<1024, 256>>>(dv.lse, static_cast<size_t>(B) * heads * S, NAN);
    CUDA_CHECK(cudaGetLastError());

    const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(D));
    const float scaleLog2 = static_cast<float>(scale * 1.4426950408889634);
    dim3 grid(static_cast<unsigned>(p.qblocks.size()), heads, B);
    auto launch = [&] { L.run(dv.q, dv.k, dv.v, dv.o, dv.lse, dv.qb, dv.lo, dv.ro, dv.rg, p.slots, heads, S, scaleLog2, grid, 0); };
    launch();
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());

    Result res;
    CUDA_CHECK(cudaMemset(dv.bad, 0, 8));
    countNonFinite<T><<<1024, 256>>>(static_cast<T*>(dv.o), n, dv.bad);
    countNonFinite<float><<<1024, 256>>>(dv.lse, static_cast<size_t>(B) * heads * S, dv.bad);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpy(&res.nonFinite, dv.bad, 8, cudaMemcpyDeviceToHost));

    // Rows to check: all, or a sample that always includes tile edges and text rows.
    std::vector<int> rows;
    if (c.sampleRows == 0 || c.sampleRows >= S) {
        for (int i = 0; i < S; ++i) rows.push_back(i);
    } else {
        uint64_t st = seed * 7919 + 17;
        auto rnd = [&](int m) { st = st * 6364136223846793005ull + 1442695040888963407ull; return static_cast<int>((st >> 33) % m); };
        rows.push_back(0);
        rows.push_back(V - 1);
        rows.push_back(S - 1);
        if (c.text > 0) rows.push_back(V);
        for (int i = 0; i < 4; ++i) { int t = rnd(g.tiles()); rows.push_back(g.starts[t]); rows.push_back(g.starts[t + 1] - 1); }
        while (static_cast<int>(rows.size()) < c.sampleRows) rows.push_back(rnd(S));
        std::sort(rows.begin(), rows.end());
        rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    }
    std::vector<int> tileOf(V);
    for (int t = 0; t < g.tiles(); ++t)
        for (int i = g.starts[t]; i < g.starts[t + 1]; ++i) tileOf[i] = t;

    std::vector<int> bhs;
    const int total = B * heads;
    if (c.checkHeads == 0 || c.checkHeads >= total) {
        for (int i = 0; i < total; ++i) bhs.push_back(i);
    } else {
        for (int i = 0; i < c.checkHeads; ++i) bhs.push_back(static_cast<int>((static_cast<long long>(i) * (total - 1)) / std::max(1, c.checkHeads - 1)));
    }
    for (int bh : bhs) {
        const int h = bh % heads;
        const size_t off = static_cast<size_t>(bh) * S * D;
        auto hq = download<T>(dv.q, off, static_cast<size_t>(S) * D);
        auto hk = download<T>(dv.k, off, static_cast<size_t>(S) * D);
        auto hv = download<T>(dv.v, off, static_cast<size_t>(S) * D);
        auto ho = download<T>(dv.o, off, static_cast<size_t>(S) * D);
        std::vector<float> hl(S);
        CUDA_CHECK(cudaMemcpy(hl.data(), dv.lse + static_cast<size_t>(bh) * S, S * 4, cudaMemcpyDeviceToHost));
        std::vector<float> fk(static_cast<size_t>(S) * D), fv(static_cast<size_t>(S) * D);
        for (size_t i = 0; i < fk.size(); ++i) { fk[i] = toFloat<T>(hk[i]); fv[i] = toFloat<T>(hv[i]); }
        unsigned nth = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
        std::vector<double> errSq(nth, 0), refSq(nth, 0), lseErr(nth, 0);
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < nth; ++t) {
            pool.emplace_back([&, t] {
                std::vector<double> sc(S), out(D), qv(D);
                for (size_t ri = t; ri < rows.size(); ri += nth) {
                    const int i = rows[ri];
                    for (int e = 0; e < D; ++e) qv[e] = toFloat<T>(hq[static_cast<size_t>(i) * D + e]);
                    double mx = -INFINITY;
                    for (int j = 0; j < S; ++j) {
                        bool allowed = i >= V || j >= V || staAllows(g, c.windows[h], tileOf[i], tileOf[j]);
                        if (!allowed) { sc[j] = -INFINITY; continue; }
                        double dot = 0;
                        const float* kr = &fk[static_cast<size_t>(j) * D];
                        for (int e = 0; e < D; ++e) dot += qv[e] * kr[e];
                        sc[j] = dot * scale;
                        mx = std::max(mx, sc[j]);
                    }
                    double sum = 0;
                    std::fill(out.begin(), out.end(), 0.0);
                    for (int j = 0; j < S; ++j) {
                        if (sc[j] == -INFINITY) continue;
                        double p = std::exp(sc[j] - mx);
                        sum += p;
                        const float* vr = &fv[static_cast<size_t>(j) * D];
                        for (int e = 0; e < D; ++e) out[e] += p * vr[e];
                    }
                    for (int e = 0; e < D; ++e) {
                        double ref = out[e] / sum, got = toFloat<T>(ho[static_cast<size_t>(i) * D + e]);
                        errSq[t] += (got - ref) * (got - ref);
                        refSq[t] += ref * ref;
                    }
                    double refLse = mx + std::log(sum);
                    lseErr[t] = std::max(lseErr[t], std::fabs(hl[i] - refLse) / std::max(1.0, std::fabs(refLse)));
                }
            });
        }
        for (auto& th : pool) th.join();
        double e = 0, r = 0;
        for (unsigned t = 0; t < nth; ++t) { e += errSq[t]; r += refSq[t]; res.maxLseErr = std::max(res.maxLseErr, lseErr[t]); }
        double rel = std::sqrt(e / r);
        if (!(rel == rel)) rel = INFINITY;
        res.maxRel = std::max(res.maxRel, rel);
    }
    res.ok = res.nonFinite == 0 && res.maxRel < 1e-2 && res.maxLseErr < 1e-3;

    if (reps > 0) {
        res.ms = median_launch_ms(launch, 2, reps);
        double flops = 0;
        for (double a2 : p.attendedPerHead) flops += 4.0 * a2 * D * B;
        res.tflops = flops / (res.ms * 1e-3) / 1e12;
    }
    cudaFree(dv.q); cudaFree(dv.k); cudaFree(dv.v); cudaFree(dv.o); cudaFree(dv.lse);
    cudaFree(dv.qb); cudaFree(dv.lo); cudaFree(dv.ro); cudaFree(dv.rg); cudaFree(dv.bad);
    return res;
}

static Result run(const Case& c, const Variant& v, int reps, uint64_t seed) {
    return c.fp16 ? runCase<__half>(c, v, reps, seed) : runCase<__nv_bfloat16>(c, v, reps, seed);
}

static std::vector<S3> same(S3 w, int heads) { return std::vector<S3>(heads, w); }

static std::vector<Case> fuzzCases() {
    std::vector<Case> cs;
    cs.push_back({"2x2x2 tiles K=1", {12, 16, 16}, {6, 8, 8}, same({1, 1, 1}, 2), 0, 64, 1, false, 0, 0, 0});
    cs.push_back({"partial 3x3x3 grid, text 1", {13, 17, 19}, {6, 8, 8}, same({3, 3, 3}, 2), 1, 128, 1, false, 0, 0, 0});
    cs.push_back({"per-head windows, text 256", {7, 9, 23}, {4, 4, 4}, {{1, 3, 3}, {2, 3, 5}, {1, 1, 1}}, 256, 64, 1, false, 0, 0, 0});
    cs.push_back({"image T=1, B=2, text 7", {1, 40, 56}, {1, 8, 8}, same({1, 3, 5}, 2), 7, 128, 2, true, 0, 0, 0});
    cs.push_back({"image T=1, B=1, text 7", {1, 40, 56}, {1, 8, 8}, same({1, 3, 5}, 2), 7, 128, 1, true, 0, 0, 0});
    cs.push_back({"B=3, 2x2x2 tiles K=1", {12, 16, 16}, {6, 8, 8}, same({1, 1, 1}, 2), 0, 64, 3, false, 0, 0, 0});
    cs.push_back({"K=grid dense 8x8x8 tiles", {16, 16, 16}, {8, 8, 8}, same({2, 2, 2}, 1), 0, 128, 1, false, 0, 0, 0});
    cs.push_back({"odd 9x10x11, K=grid and K=1, text 256", {9, 10, 11}, {4, 4, 4}, {{3, 3, 3}, {1, 1, 1}}, 256, 128, 1, true, 0, 0, 0});
    cs.push_back({"single partial tile, text 1", {5, 5, 5}, {6, 8, 8}, same({1, 1, 1}, 2), 1, 64, 1, false, 0, 0, 0});
    cs.push_back({"edge windows 5x6x10 grid", {20, 24, 40}, {4, 4, 4}, {{3, 3, 3}, {5, 1, 9}}, 0, 128, 1, false, 0, 3000, 0});
    cs.push_back({"sharp scores scale 0.5", {12, 16, 24}, {6, 8, 8}, same({1, 1, 3}, 1), 3, 64, 1, true, 0.5, 0, 0});
    cs.push_back({"sharp scores scale 0.5 bf16", {12, 16, 24}, {6, 8, 8}, same({1, 1, 3}, 1), 3, 128, 1, false, 0.5, 0, 0});
    cs.push_back({"Wan 21x30x52 3x3x3 sampled", {21, 30, 52}, {6, 8, 8}, same({3, 3, 3}, 2), 0, 128, 1, false, 0, 96, 0});
    cs.push_back({"Wan 21x30x52 full+text 256 sampled fp16", {21, 30, 52}, {6, 8, 8}, same({4, 4, 7}, 2), 256, 64, 1, true, 0, 96, 0});
    return cs;
}

static const char* fmtOk(bool ok) { return ok ? "ok" : "FAIL"; }

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // a run killed by a time limit still leaves its finished lines
    std::string mode = argc > 1 ? argv[1] : "check";
    if (mode == "plan") {  // host-only: list statistics of the benchmark shapes
        struct P { S3 video; S3 window; int text; };
        for (P c : {P{{30, 48, 80}, {3, 3, 3}, 0}, P{{30, 48, 80}, {3, 6, 10}, 0}, P{{30, 48, 80}, {5, 6, 10}, 256},
                    P{{21, 30, 52}, {3, 3, 3}, 0}, P{{21, 30, 52}, {4, 4, 7}, 0}}) {
            Grid g(c.video, {6, 8, 8});
            Plan p = buildPlan(g, c.text, {c.window}, 64);
            int q = g.tiles() / 2;
            std::printf("%s window %s text %d: grid %s, %zu qblocks, %zu ranges; tile %d ranges:", c.video.str().c_str(),
                        c.window.str().c_str(), c.text, g.n.str().c_str(), p.qblocks.size(), p.ranges.size(), q);
            for (int i = p.rangeOffsets[q]; i < p.rangeOffsets[q + 1]; ++i) std::printf(" [%d,%d)", p.ranges[i].x, p.ranges[i].y);
            std::printf("\n  attended per head %.6g, density %.4f\n", p.attendedPerHead[0],
                        p.attendedPerHead[0] / (double(g.starts[g.tiles()] + c.text) * (g.starts[g.tiles()] + c.text)));
        }
        return 0;
    }
    std::vector<Variant> variants = allVariants();
    bool allOk = true;
    if (mode == "check" || mode == "sanitize") {
        std::vector<Case> cs = fuzzCases();
        if (mode == "sanitize") cs = {cs[2], cs[8], cs[7]};
        uint64_t seed = 1;
        for (const Case& c : cs) {
            if (!case_chosen(c.label, "CHECK_CASES")) continue;
            for (const Variant& v : variants) {
                Result r = run(c, v, 0, seed++);
                allOk &= r.ok;
                std::printf("%-44s %-10s %s d=%-3d relL2 %.2e  lse %.1e  nonfinite %llu  %s\n", c.label.c_str(),
                            v.name.c_str(), c.fp16 ? "f16 " : "bf16", c.d, r.maxRel, r.maxLseErr, r.nonFinite, fmtOk(r.ok));
            }
        }
    } else if (mode == "bench") {
        std::vector<std::string> want(argv + 2, argv + argc);
        struct B { const char* label; Case c; int reps; };
        std::vector<B> bs = {
            {"Hunyuan STA 3x3x3", {"", {30, 48, 80}, {6, 8, 8}, same({3, 3, 3}, 24), 0, 128, 1, false, 0, 24, 2}, 10},
            {"Hunyuan STA 3x6x10", {"", {30, 48, 80}, {6, 8, 8}, same({3, 6, 10}, 24), 0, 128, 1, false, 0, 16, 2}, 5},
            {"Hunyuan full 5x6x10", {"", {30, 48, 80}, {6, 8, 8}, same({5, 6, 10}, 24), 0, 128, 1, false, 0, 16, 2}, 5},
            {"Hunyuan STA 3x3x3 text 256", {"", {30, 48, 80}, {6, 8, 8}, same({3, 3, 3}, 24), 256, 128, 1, false, 0, 24, 2}, 10},
            {"Wan STA 3x3x3", {"", {21, 30, 52}, {6, 8, 8}, same({3, 3, 3}, 12), 0, 128, 1, false, 0, 24, 2}, 20},
            {"Wan full 4x4x7", {"", {21, 30, 52}, {6, 8, 8}, same({4, 4, 7}, 12), 0, 128, 1, false, 0, 24, 2}, 10},
            // Two KV blocks per item, B = 2: short lists like the DiT's cross-attention (512 text keys).
            {"Wan STA 1x1x1 B=2", {"", {21, 30, 52}, {6, 8, 8}, same({1, 1, 1}, 12), 0, 128, 2, false, 0, 24, 2}, 20},
        };
        std::printf("%-28s %-10s %9s %8s %9s %s\n", "case", "variant", "ms", "TFLOP/s", "relL2", "check");
        uint64_t seed = 100;
        for (const B& b : bs)
            for (const Variant& v : variants) {
                if (!bench_case_chosen(b.label)) continue;
                if (!want.empty() && std::find(want.begin(), want.end(), v.name) == want.end()) continue;
                Result r = run(b.c, v, b.reps, seed++);
                allOk &= r.ok;
                std::printf("%-28s %-10s %9.2f %8.1f %9.2e %s\n", b.label, v.name.c_str(), r.ms, r.tflops, r.maxRel, fmtOk(r.ok));
                std::fflush(stdout);
            }
    } else if (mode == "profile") {  // one Hunyuan STA 3x3x3 launch (plus the check's), for ncu
        Case c{"", {30, 48, 80}, {6, 8, 8}, same({3, 3, 3}, 24), 0, 128, 1, false, 0, 8, 1};
        for (const Variant& v : variants)
            if (argc > 2 && v.name == argv[2]) {
                Result r = run(c, v, 0, 5);
                allOk &= r.ok;
                std::printf("profile %s relL2 %.2e %s\n", v.name.c_str(), r.maxRel, fmtOk(r.ok));
            }
    } else {
        std::fprintf(stderr, "usage: %s check|sanitize|bench [variant...]|profile variant|plan\n", argv[0]);
        return 2;
    }
    std::printf("%s\n", allOk ? "ALL OK" : "SOME CHECKS FAILED");
    return allOk ? 0 : 1;
}
