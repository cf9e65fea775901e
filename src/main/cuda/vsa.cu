// Video Sparse Attention (VSA) around the block-sparse attention kernels, over tile-ordered tokens, no text.
// Forward: pool (mean of q, k, v over each tile's real tokens) -> coarse (softmax attention between pooled tiles,
// its log-sum-exp, the top-k KV tiles of every query tile and the fine kernel's KV range lists, written here on
// the device) -> fine attention (tile_attention*.cu over those lists) -> combine (out = coarse x gate + fine).
// A forward that needs only the selection takes it from coarse_scores (into scratch) and coarse_select instead.
// Backward: coarse_grad_in (dgate, and the coarse output's gradient summed over each tile) -> coarse_bwd_rows
// (dq of the pooled queries; P and dS kept) -> coarse_bwd_cols (dk, dv of the pooled keys and values); both passes
// write each pooled gradient divided by the tile's real token count, the share of every token of the tile, which
// the fine branch's backward (tile_attention_bwd*.cu, its dkAdd, dvAdd and dqAdd tables) adds as it stores dq, dk
// and dv. That backward reads the transposed selection that transpose_count / scan / transpose_fill build from the
// forward's `chosen` bytes.
//
// ABI (contiguous, device pointers). A plane is one (batch, head): tensors [B, heads, ...] are [P = B*heads, ...].
//   tokens      q, k, v, gate, fine, out, dOut, dgate, dq, dk, dv: [P, S, D] of T (bf16 or fp16).
//   tile rows   pooled q/k/v, coarse (= softmax(pq pk^T scale) pv), dCoarse, per-token shares of the pooled
//               gradients: [P, tiles, D] fp32.
//   coarseLse   [P, tiles] fp32, natural log. probs, dScores: [P, tiles, tiles] fp32 scratch of the backward.
//   tileStarts  int [tiles + 1]: first token of each tile, and S.
//   selection   int [P, tiles, topK]: the top-k KV tiles of each query tile, ascending; ties go to the lower index.
//   ranges      int2 [P * tiles * topK]: {tileStarts[kv], tileStarts[kv + 1]} of each selected tile, the KV lists
//               of the fine kernel with list l = plane * tiles + queryTile at rangeOffsets[l] = l * topK.
//   chosen      bytes [P, tiles (kv), tiles (query)], zeroed before coarse_fwd (or coarse_select), which sets the
//               selected pairs; or null when no backward follows.
//   scores      [P', tiles, tiles] fp32: coarse_scores's output for a pass of P' planes, read by coarse_select.
// Launches: pool grid (tiles, P, 3) x 128 (or (tiles, P, 2) for q and k alone); combine, coarse_grad_in grid
// (tiles, P) x 128;
// coarse_fwd grid (ceil(tiles / qt), P) x 256 with dynamic shared memory coarse_fwd_smem(D, qt, tiles);
// coarse_scores grid (ceil(tiles / 64), ceil(tiles / 64), P') x 256 with coarse_scores_smem(D); coarse_select_sN
// grid (ceil(tiles / 8), P') x 256, N = 4 ceil(tiles / 128) up to 1,536 tiles, else 0;
// coarse_bwd_rows grid (ceil(tiles / 64), P) x 256, coarse_bwd_cols grid (ceil(tiles / 64), P) x 256, both with
// the dynamic shared memory their entry comments give; transpose_count / transpose_fill one warp per (plane, kv
// tile), 256 threads per block; scan one block of 1024 threads.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "tileattn/common.cuh"

namespace tileattn {
namespace vsa {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kRowThreads = 128;   // token kernels: 16-byte chunks of rows, several rows in flight
constexpr int kThreads = 256;      // coarse kernels
constexpr int kQt = 16;            // query tiles per coarse block (at most)
constexpr int kFwdChunk = 64;      // the same for coarse_fwd, whose threads each take kFwdChunk / 16 query rows

template <typename T> struct Half;
template <> struct Half<__nv_bfloat16> {
    using Two = __nv_bfloat162;
    static __device__ __forceinline__ float2 unpack(Two x) { return __bfloat1622float2(x); }
    static __device__ __forceinline__ Two pack(float a, float b) { return __floats2bfloat162_rn(a, b); }
};
template <> struct Half<__half> {
    using Two = __half2;
    static __device__ __forceinline__ float2 unpack(Two x) { return __half22float2(x); }
    static __device__ __forceinline__ Two pack(float a, float b) { return __floats2half2_rn(a, b); }
};

template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&f)[8]) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        typename Half<T>::Two two;
        memcpy(&two, &w[i], 4);
        const float2 x = Half<T>::unpack(two);
        f[2 * i] = x.x;
        f[2 * i + 1] = x.y;
    }
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const float (&f)[8]) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const typename Half<T>::Two two = Half<T>::pack(f[2 * i], f[2 * i + 1]);
        memcpy(&w[i], &two, 4);
    }
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
}

__device__ __forceinline__ void load8f(const float* p, float (&f)[8]) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) x += __shfl_xor_sync(kFull, x, m);
    return x;
}

__device__ __forceinline__ int warp_sum(int x) {
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) x += __shfl_xor_sync(kFull, x, m);
    return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1) x = fmaxf(x, __shfl_xor_sync(kFull, x, m));
    return x;
}

__device__ __forceinline__ unsigned lanes_below() {
    unsigned m;
    asm("mov.u32 %0, %%lanemask_lt;" : "=r"(m));
    return m;
}

// Unsigned keys in the order of the floats (-0 just below +0, NaN above +inf), the CPU's TopKTiles order.
__device__ __forceinline__ unsigned order_key(float f) {
    const unsigned b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// ---------------------------------------------------------------- token-side kernels (one tile per block)

// Sums of 8-column chunks over rows of one tile: thread (group g, chunk c) takes rows start+g, start+g+GROUPS, ...
// The groups' partial sums meet in shared memory; threads below D then hold one column's total each.
template <int D>
struct TileColumns {
    static constexpr int CH = D / 8;
    static constexpr int GROUPS = kRowThreads / CH;
    float (*part)[D];
    int c, g;
    __device__ __forceinline__ TileColumns(float (*part_)[D]) : part(part_), c(threadIdx.x % CH), g(threadIdx.x / CH) {}
    __device__ __forceinline__ void stash(const float (&acc)[8]) {
#pragma unroll
        for (int e = 0; e < 8; ++e) part[g][c * 8 + e] = acc[e];
    }
    // Column col's total over the groups (call after a barrier).
    __device__ __forceinline__ float total(int col) const {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < GROUPS; ++i) s += part[i][col];
        return s;
    }
};

template <typename T, int D>
__device__ __forceinline__ void pool(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                                     float* __restrict__ pq, float* __restrict__ pk, float* __restrict__ pv,
                                     const int* __restrict__ tileStarts, int tiles, int S) {
    __shared__ float part[TileColumns<D>::GROUPS][D];
    TileColumns<D> cols(part);
    const T* x = blockIdx.z == 0 ? q : blockIdx.z == 1 ? k : v;
    float* pooled = blockIdx.z == 0 ? pq : blockIdx.z == 1 ? pk : pv;
    const int tile = blockIdx.x;
    const size_t plane = blockIdx.y;
    const int start = tileStarts[tile], end = tileStarts[tile + 1];
    const T* base = x + plane * S * D + cols.c * 8;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    // Four rows' loads in flight before their adds (a whole 4x4x4 tile is two such steps at D = 128); the adds keep
    // the row order, so the sums are those of one row at a time.
    constexpr int G = TileColumns<D>::GROUPS, AHEAD = 4;
    for (int r = start + cols.g; r < end; r += AHEAD * G) {
        float f[AHEAD][8];
#pragma unroll
        for (int u = 0; u < AHEAD; ++u)
            if (r + u * G < end) load8(base + static_cast<size_t>(r + u * G) * D, f[u]);
#pragma unroll
        for (int u = 0; u < AHEAD; ++u)
            if (r + u * G < end) {
#pragma unroll
                for (int e = 0; e < 8; ++e) acc[e] += f[u][e];
            }
    }
    cols.stash(acc);
    __syncthreads();
    // A division, not a multiplication by the reciprocal: the mean is then the correctly rounded one whenever the
    // sum is exact, as the CPU's is.
    const float count = static_cast<float>(end - start);
    for (int col = threadIdx.x; col < D; col += kRowThreads)
        pooled[(plane * tiles + tile) * D + col] = cols.total(col) / count;
}

// out = coarse (of the token's tile) x gate + fine; no gate means a gate of 1.
template <typename T, int D>
__device__ __forceinline__ void combine(const T* __restrict__ fine, const float* __restrict__ coarse,
                                        const T* __restrict__ gate, T* __restrict__ out,
                                        const int* __restrict__ tileStarts, int tiles, int S) {
    constexpr int CH = D / 8, GROUPS = kRowThreads / CH;
    const int c = threadIdx.x % CH, g = threadIdx.x / CH;
    const int tile = blockIdx.x;
    const size_t plane = blockIdx.y;
    float cv[8];
    load8f(coarse + (plane * tiles + tile) * D + c * 8, cv);
    for (int r = tileStarts[tile] + g; r < tileStarts[tile + 1]; r += GROUPS) {
        const size_t at = (plane * S + r) * D + c * 8;
        float f[8], o[8];
        load8(fine + at, f);
        if (gate != nullptr) {
            float gv[8];
            load8(gate + at, gv);
#pragma unroll
            for (int e = 0; e < 8; ++e) o[e] = fmaf(cv[e], gv[e], f[e]);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) o[e] = cv[e] + f[e];
        }
        store8(out + at, o);
    }
}

// dgate = dOut x coarse (when there is a gate); dCoarse[tile] = sum over the tile's tokens of dOut x gate.
template <typename T, int D>
__device__ __forceinline__ void coarse_grad_in(const T* __restrict__ dOut, const T* __restrict__ gate,
                                               const float* __restrict__ coarse, T* __restrict__ dGate,
                                               float* __restrict__ dCoarse, const int* __restrict__ tileStarts,
                                               int tiles, int S) {
    __shared__ float part[TileColumns<D>::GROUPS][D];
    TileColumns<D> cols(part);
    const int tile = blockIdx.x;
    const size_t plane = blockIdx.y;
    float cv[8];
    load8f(coarse + (plane * tiles + tile) * D + cols.c * 8, cv);
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int r = tileStarts[tile] + cols.g; r < tileStarts[tile + 1]; r += TileColumns<D>::GROUPS) {
        const size_t at = (plane * S + r) * D + cols.c * 8;
        float dO[8];
        load8(dOut + at, dO);
        if (gate != nullptr) {
            float gv[8], dg[8];
            load8(gate + at, gv);
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                acc[e] = fmaf(dO[e], gv[e], acc[e]);
                dg[e] = dO[e] * cv[e];
            }
            store8(dGate + at, dg);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[e] += dO[e];
        }
    }
    cols.stash(acc);
    __syncthreads();
    for (int col = threadIdx.x; col < D; col += kRowThreads)
        dCoarse[(plane * tiles + tile) * D + col] = cols.total(col);
}

// ---------------------------------------------------------------- coarse attention between pooled tiles (fp32)

// Top-k of one row of the tiles' scores by one warp: the k-th largest key is found bit by bit (the largest key with
// at least k keys at or above it), then one pass in index order takes every key above it and the first keys equal to
// it, so ties go to the lower index and the output is ascending. The search stops early at a candidate with exactly
// k keys at or above it: those k are then the selection, as they are for the k-th largest key (which lies at or
// above the candidate). TopKTake is that last pass, fed 32 keys at a time.
struct TopKTake {
    int* sel;
    int2* ranges;
    const int* tileStarts;
    unsigned char* chosenOfPlane;
    int queryTile, tiles, lane;
    unsigned threshold;
    int equalsWanted, written = 0, equalsSeen = 0;

    // The keys of indices base + lane, in index order; indices past the row are skipped.
    __device__ __forceinline__ void take(int base, unsigned key) {
        const int j = base + lane;
        const bool equal = j < tiles && key == threshold;
        const unsigned equalMask = __ballot_sync(kFull, equal);
        const bool taken = (j < tiles && key > threshold) ||
                           (equal && equalsSeen + __popc(equalMask & lanes_below()) < equalsWanted);
        const unsigned takeMask = __ballot_sync(kFull, taken);
        if (taken) {
            const int pos = written + __popc(takeMask & lanes_below());
            sel[pos] = j;
            ranges[pos] = make_int2(tileStarts[j], tileStarts[j + 1]);
            if (chosenOfPlane != nullptr) chosenOfPlane[static_cast<size_t>(j) * tiles + queryTile] = 1;
        }
        written += __popc(takeMask);
        equalsSeen += __popc(equalMask);
    }
};

// The top-k with the row's keys in registers (lane l keeps indices l + 32 i, i < SLOTS, and key 0 past the row,
// which no candidate of the search reaches): a step of the search costs a compare and an add per key and one warp
// reduction, where reading the row from shared memory cost a load and the key's conversion as well.
template <int SLOTS>
__device__ __forceinline__ void warp_top_k_regs(const float* s, int topK, TopKTake& out) {
    unsigned key[SLOTS];
#pragma unroll
    for (int i = 0; i < SLOTS; ++i) {
        const int j = 32 * i + out.lane;
        key[i] = j < out.tiles ? order_key(s[j]) : 0u;
    }
    unsigned threshold = 0;
    for (int bit = 31; bit >= 0; --bit) {
        const unsigned candidate = threshold | (1u << bit);
        int count = 0;
#pragma unroll
        for (int i = 0; i < SLOTS; ++i) count += key[i] >= candidate;
        const int total = __reduce_add_sync(kFull, count);
        if (total >= topK) {
            threshold = candidate;
            if (total == topK) break;
        }
    }
    int above = 0;
#pragma unroll
    for (int i = 0; i < SLOTS; ++i) above += key[i] > threshold;
    out.threshold = threshold;
    out.equalsWanted = topK - __reduce_add_sync(kFull, above);
#pragma unroll
    for (int i = 0; i < SLOTS; ++i) out.take(32 * i, key[i]);
}

// The same for rows too long for registers, reading the row from shared memory at every step.
__device__ __forceinline__ void warp_top_k(const float* s, int topK, TopKTake& out) {
    const int n = out.tiles, lane = out.lane;
    unsigned threshold = 0;
    for (int bit = 31; bit >= 0; --bit) {
        const unsigned candidate = threshold | (1u << bit);
        int count = 0;
        for (int j = lane; j < n; j += 32) count += order_key(s[j]) >= candidate;
        const int total = __reduce_add_sync(kFull, count);
        if (total >= topK) {
            threshold = candidate;
            if (total == topK) break;
        }
    }
    int above = 0;
    for (int j = lane; j < n; j += 32) above += order_key(s[j]) > threshold;
    out.threshold = threshold;
    out.equalsWanted = topK - __reduce_add_sync(kFull, above);
    for (int base = 0; base < n; base += 32) out.take(base, base + lane < n ? order_key(s[base + lane]) : 0u);
}

// Shared memory of coarse_fwd as launched: Q rows, one staged chunk of K or V rows, and the block's score rows. The
// kernel lays them out as 16 query rows of stride D, 64 key rows of stride D + 4 and qt score rows of stride
// score_stride(tiles), at most 48 floats more than qt * tiles: they fit in the 64 floats the unpadded query rows
// leave.
__host__ __device__ constexpr size_t coarse_fwd_smem(int d, int qt, int tiles) {
    return sizeof(float) * (static_cast<size_t>(kQt + kFwdChunk) * (d + 4) + static_cast<size_t>(qt) * tiles);
}

__device__ __forceinline__ int score_stride(int tiles) { return (tiles + 3) & ~3; }

// The scores phase splits each score's four fmaf chains (chain t: columns 4c + t) over four lanes, so its staged rows
// are chain-major: chain t of a row as D / 16 float4s of four consecutive terms, in an order XOR-swizzled so that
// the loads of chunk_scores are conflict-free: the four chains of rows r and r + 4 (query rows, stride D) lie in
// eight different bank groups, and those of four neighbouring keys (key rows, stride D + 4) two to a bank group.
template <int D>
__device__ __forceinline__ int query_quad(int row, int t, int c4) {
    static_assert(D == 64 || D == 128, "head dim");
    const int g = (row >> 2) & 1;
    return row * (D / 4) + t * (D / 16) + (c4 ^ (D == 128 ? t | g << 2 : (t >> 1) | g << 1));
}

template <int D>
__device__ __forceinline__ int key_quad(int row, int t, int c4) {
    return row * (D / 4 + 1) + t * (D / 16) + (D == 128 ? c4 ^ (2 * t) : c4);
}

// Rows of a [*, D] fp32 matrix on their way to shared memory, one thread's share in registers (float4s tid,
// tid + 256, ...: coalesced loads), so that a chunk's global loads are in flight while the block computes on the
// previous chunk. Rows past n repeat row n - 1 (real data that no result is taken from).
template <int D, int ROWS>
struct StagedRows {
    static constexpr int F4 = D / 4, PER_THREAD = ROWS * F4 / kThreads;
    static_assert(ROWS * F4 % kThreads == 0, "whole float4s per thread");
    float4 g[PER_THREAD];

    __device__ __forceinline__ void load(const float* src, int row0, int n) {
#pragma unroll
        for (int u = 0; u < PER_THREAD; ++u) {
            const int f = threadIdx.x + u * kThreads, r = f / F4;
            g[u] = reinterpret_cast<const float4*>(src + static_cast<size_t>(row0 + min(r, n - 1)) * D)[f % F4];
        }
    }

    // Chain-major (query_quad or key_quad order): float4 c of a row holds term c of the four chains.
    __device__ __forceinline__ void store_chains(float* dst, bool keys) const {
#pragma unroll
        for (int u = 0; u < PER_THREAD; ++u) {
            const int f = threadIdx.x + u * kThreads, r = f / F4, c = f % F4;
            float* d = dst + (c & 3);
            const float v[4] = {g[u].x, g[u].y, g[u].z, g[u].w};
#pragma unroll
            for (int t = 0; t < 4; ++t) d[4 * (keys ? key_quad<D>(r, t, c >> 2) : query_quad<D>(r, t, c >> 2))] = v[t];
        }
    }
};

// Scores of the block's query rows against one staged chunk of key rows. Thread (rows r0 .. r0 + 3, keys kg + 16 e,
// chain t) runs chain t of 16 scores: per four terms, four query and four key float4s serve 64 fmaf (shared memory
// returns 128 bytes a cycle, so loaded registers per fmaf bound this loop). A warp's lanes are two row groups (lane
// bit 0) x four key groups (bits 1, 2) x four chains (bits 3, 4): lanes n and n ^ 2 read the same query float4 and
// lanes n and n ^ 1 the same key float4 (pairs that the hardware can serve at twice the rate), and each load's eight
// or sixteen addresses fill the banks evenly (query_quad, key_quad). The four lanes of a key group then add their
// chains as the CPU's order does, (s0 + s1) + (s2 + s3) (the lanes of a pair form the same sums), and lane t keeps
// row t of its group.
template <int D>
__device__ __forceinline__ void chunk_scores(const float* sQ, const float* sK, float* sS, int ss, int rows, int n,
                                             int col0, float scale) {
    constexpr int C4 = D / 16, RQ = 4, RK = 4, KG = kFwdChunk / RK;
    static_assert(kThreads == (kQt / RQ) * KG * 4, "row groups x key groups x chains");
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int t = lane >> 3, kg = ((lane >> 1) & 3) + 4 * (warp >> 1), r0 = (2 * (warp & 1) + (lane & 1)) * RQ;
    if (8 * (warp & 1) >= rows) return;
    const float4* q4 = reinterpret_cast<const float4*>(sQ);
    const float4* k4 = reinterpret_cast<const float4*>(sK);
    float acc[RQ][RK];
#pragma unroll
    for (int i = 0; i < RQ; ++i)
#pragma unroll
        for (int e = 0; e < RK; ++e) acc[i][e] = 0.f;
#pragma unroll 1
    for (int c4 = 0; c4 < C4; ++c4) {
        float4 k[RK];
#pragma unroll
        for (int e = 0; e < RK; ++e) k[e] = k4[key_quad<D>(kg + KG * e, t, c4)];
#pragma unroll
        for (int i = 0; i < RQ; ++i) {
            const float4 q = q4[query_quad<D>(r0 + i, t, c4)];
#pragma unroll
            for (int e = 0; e < RK; ++e) {
                acc[i][e] = fmaf(q.x, k[e].x, acc[i][e]);
                acc[i][e] = fmaf(q.y, k[e].y, acc[i][e]);
                acc[i][e] = fmaf(q.z, k[e].z, acc[i][e]);
                acc[i][e] = fmaf(q.w, k[e].w, acc[i][e]);
            }
        }
    }
    // Chains t and t ^ 1 meet first (lane t keeps rows 2 m + t % 2), then the pairs (lane t keeps row t).
    float pair[2][RK];
#pragma unroll
    for (int m = 0; m < 2; ++m) {
#pragma unroll
        for (int e = 0; e < RK; ++e) {
            const float mine = t & 1 ? acc[2 * m + 1][e] : acc[2 * m][e];
            const float theirs = __shfl_xor_sync(kFull, t & 1 ? acc[2 * m][e] : acc[2 * m + 1][e], 8);
            pair[m][e] = mine + theirs;
        }
    }
    float score[RK];
#pragma unroll
    for (int e = 0; e < RK; ++e) {
        const float mine = t >> 1 ? pair[1][e] : pair[0][e];
        const float theirs = __shfl_xor_sync(kFull, t >> 1 ? pair[0][e] : pair[1][e], 16);
        score[e] = (mine + theirs) * scale;
    }
    if (r0 + t >= rows) return;
#pragma unroll
    for (int e = 0; e < RK; ++e)
        if (kg + KG * e < n) sS[(r0 + t) * ss + col0 + kg + KG * e] = score[e];
}

__device__ __forceinline__ void copy_async16(float* dst, const float* src) {
    const unsigned at = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(at), "l"(src));
}

__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void copy_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

constexpr int kVChunk = 32;  // V rows per stage of coarse_output, two stages in the K chunk's space

// V rows [c0, c0 + kVChunk) into a stage of stride D (rows past the matrix repeat its last row), one copy group.
template <int D>
__device__ __forceinline__ void stage_v(float* dst, const float* __restrict__ pv, int c0, int tiles) {
    constexpr int F4 = D / 4;
    static_assert(kVChunk * F4 % kThreads == 0 && 2 * kVChunk * D <= kFwdChunk * (D + 4), "two stages in the K chunk");
    const int last = tiles - 1 - c0;
#pragma unroll
    for (int u = 0; u < kVChunk * F4 / kThreads; ++u) {
        const int f = threadIdx.x + u * kThreads, r = f / F4, c = f % F4;
        copy_async16(dst + r * D + 4 * c, pv + static_cast<size_t>(c0 + min(r, last)) * D + 4 * c);
    }
    copy_async_commit();
}

// coarse = P V / rowSum over the block's rows: thread (row group, column quad) owns four rows of four columns; per
// four keys, four V float4s and one float4 of P per row (the same for the warp's lanes) serve 64 fmaf. That takes
// D threads; the others only stage V. Each output sums its products in key order. V comes in stages of kVChunk
// rows, the next copied while this one is used; the caller has started stage 0 (stage_v into sV).
template <int D>
__device__ __forceinline__ void coarse_output(const float* sS, int ss, float* sV, const float* __restrict__ pv,
                                              const float* rowSum, float* __restrict__ coarse, size_t plane, int q0,
                                              int rows, int tiles) {
    constexpr int RV = 4, QUADS = D / 4;
    static_assert(kQt / RV * QUADS <= kThreads, "one thread per row group and column quad");
    const int quad = threadIdx.x % QUADS, r0 = (threadIdx.x / QUADS) * RV;
    const bool works = threadIdx.x < kQt / RV * QUADS && r0 < rows;
    // Rows of the group past the block's rows read the last real row (qt may be below 16: rows past it are not
    // allocated), and nothing of them is stored.
    int rowAt[RV];
    float4 acc[RV];
#pragma unroll
    for (int r = 0; r < RV; ++r) {
        rowAt[r] = min(r0 + r, rows - 1) * ss;
        acc[r] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    for (int c0 = 0, stage = 0; c0 < tiles; c0 += kVChunk, stage ^= 1) {
        const int n = min(kVChunk, tiles - c0);
        if (c0 + kVChunk < tiles) {
            stage_v<D>(sV + (stage ^ 1) * kVChunk * D, pv, c0 + kVChunk, tiles);
            copy_async_wait<1>();
        } else {
            copy_async_wait<0>();
        }
        __syncthreads();
        if (works) {
            const float4* v = reinterpret_cast<const float4*>(sV + stage * kVChunk * D) + quad;
            int j = 0;
#pragma unroll 1
            for (; j + 4 <= n; j += 4) {
                const float4 w[4] = {v[j * QUADS], v[(j + 1) * QUADS], v[(j + 2) * QUADS], v[(j + 3) * QUADS]};
#pragma unroll
                for (int r = 0; r < RV; ++r) {
                    const float4 p4 = *reinterpret_cast<const float4*>(sS + rowAt[r] + c0 + j);
                    const float p[4] = {p4.x, p4.y, p4.z, p4.w};
#pragma unroll
                    for (int u = 0; u < 4; ++u) {
                        acc[r].x = fmaf(p[u], w[u].x, acc[r].x);
                        acc[r].y = fmaf(p[u], w[u].y, acc[r].y);
                        acc[r].z = fmaf(p[u], w[u].z, acc[r].z);
                        acc[r].w = fmaf(p[u], w[u].w, acc[r].w);
                    }
                }
            }
            for (; j < n; ++j) {
                const float4 w = v[j * QUADS];
#pragma unroll
                for (int r = 0; r < RV; ++r) {
                    const float p = sS[rowAt[r] + c0 + j];
                    acc[r].x = fmaf(p, w.x, acc[r].x);
                    acc[r].y = fmaf(p, w.y, acc[r].y);
                    acc[r].z = fmaf(p, w.z, acc[r].z);
                    acc[r].w = fmaf(p, w.w, acc[r].w);
                }
            }
        }
        __syncthreads();
    }
    if (!works) return;
#pragma unroll
    for (int r = 0; r < RV; ++r) {
        const int qi = r0 + r;
        if (qi >= rows) continue;
        const float sum = rowSum[qi];
        reinterpret_cast<float4*>(coarse + (plane * tiles + q0 + qi) * D)[quad] =
            make_float4(acc[r].x / sum, acc[r].y / sum, acc[r].z / sum, acc[r].w / sum);
    }
}

// The selection of the warp's rows (lanes keep SLOTS keys each; 0: the row is read from shared memory at every
// step), then their softmax: exp(score - max) in place, the sums and the log-sum-exps.
template <int SLOTS>
__device__ __forceinline__ void select_rows(float* sS, int ss, float* rowSum, float* __restrict__ coarse,
                                            float* __restrict__ coarseLse, int* __restrict__ selection,
                                            int2* __restrict__ ranges, unsigned char* __restrict__ chosen,
                                            const int* __restrict__ tileStarts, size_t plane, int q0, int rows,
                                            int tiles, int topK) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int qi = warp; qi < rows; qi += kThreads / 32) {
        float* s = sS + qi * ss;
        const int row = static_cast<int>(plane) * tiles + q0 + qi;
        TopKTake out{selection + static_cast<size_t>(row) * topK, ranges + static_cast<size_t>(row) * topK, tileStarts,
                     chosen != nullptr ? chosen + plane * tiles * tiles : nullptr, q0 + qi, tiles, lane};
        if constexpr (SLOTS == 0) {
            warp_top_k(s, topK, out);
        } else {
            warp_top_k_regs<SLOTS>(s, topK, out);
        }
        float mx = -INFINITY;
        for (int j = lane; j < tiles; j += 32) mx = fmaxf(mx, s[j]);
        mx = warp_max(mx);
        __syncwarp();
        float sum = 0.f;
        for (int j = lane; j < tiles; j += 32) {
            const float e = expf(s[j] - mx);
            s[j] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        if (lane == 0) {
            rowSum[qi] = sum;
            coarseLse[row] = mx + logf(sum);
        }
    }
}

// One block per qt query tiles of a plane: scores against every key tile, the top-k selection and its KV ranges,
// then the softmax, its log-sum-exp and the coarse output (a forward that needs only the selection takes the two
// kernels below instead). The next chunk's rows load while the block computes on the current one.
template <int D>
__device__ __forceinline__ void coarse_fwd(const float* __restrict__ pq, const float* __restrict__ pk,
                                           const float* __restrict__ pv, float* __restrict__ coarse,
                                           float* __restrict__ coarseLse, int* __restrict__ selection,
                                           int2* __restrict__ ranges, unsigned char* __restrict__ chosen,
                                           const int* __restrict__ tileStarts, int tiles, int topK, int qt,
                                           float scale) {
    static_assert(kQt * kFwdChunk % kThreads == 0 && kQt * D % kThreads == 0, "whole rows per thread");
    extern __shared__ float4 smem4[];
    float* sQ = reinterpret_cast<float*>(smem4);  // [kQt][D] in query_quad order
    float* sKV = sQ + kQt * D;                    // [kFwdChunk][D + 4] in key_quad order, then V [2][kVChunk][D]
    float* sS = sKV + kFwdChunk * (D + 4);        // [qt][ss]: scaled scores, then exp(score - max)
    __shared__ float rowSum[kQt];

    const size_t plane = blockIdx.y;
    const int q0 = blockIdx.x * qt, rows = min(qt, tiles - q0), ss = score_stride(tiles);
    const float* pkPlane = pk + plane * tiles * D;

    StagedRows<D, kFwdChunk> next;
    {
        StagedRows<D, kQt> q;
        q.load(pq + plane * tiles * D, q0, rows);
        next.load(pkPlane, 0, min(kFwdChunk, tiles));
        q.store_chains(sQ, false);
    }
    for (int c0 = 0; c0 < tiles; c0 += kFwdChunk) {
        const int n = min(kFwdChunk, tiles - c0);
        __syncthreads();
        next.store_chains(sKV, true);
        if (c0 + kFwdChunk < tiles) next.load(pkPlane, c0 + kFwdChunk, min(kFwdChunk, tiles - c0 - kFwdChunk));
        __syncthreads();
        chunk_scores<D>(sQ, sKV, sS, ss, rows, n, c0, scale);
    }
    __syncthreads();
    const float* pvPlane = pv + plane * tiles * D;
    stage_v<D>(sKV, pvPlane, 0, tiles);  // in flight during the selection and softmax

#define TILEATTN_VSA_SELECT(SLOTS)                                                                                  \
    select_rows<SLOTS>(sS, ss, rowSum, coarse, coarseLse, selection, ranges, chosen, tileStarts, plane, q0, rows,  \
                       tiles, topK)
    // Register rows in steps of four keys a lane (128 tiles), up to 48 (1,536 tiles).
    switch ((tiles + 127) / 128) {
        case 1: TILEATTN_VSA_SELECT(4); break;
        case 2: TILEATTN_VSA_SELECT(8); break;
        case 3: TILEATTN_VSA_SELECT(12); break;
        case 4: TILEATTN_VSA_SELECT(16); break;
        case 5: TILEATTN_VSA_SELECT(20); break;
        case 6: TILEATTN_VSA_SELECT(24); break;
        case 7: TILEATTN_VSA_SELECT(28); break;
        case 8: TILEATTN_VSA_SELECT(32); break;
        case 9: TILEATTN_VSA_SELECT(36); break;
        case 10: TILEATTN_VSA_SELECT(40); break;
        case 11: TILEATTN_VSA_SELECT(44); break;
        case 12: TILEATTN_VSA_SELECT(48); break;
        default: TILEATTN_VSA_SELECT(0); break;
    }
#undef TILEATTN_VSA_SELECT
    coarse_output<D>(sS, ss, sKV, pvPlane, rowSum, coarse, plane, q0, rows, tiles);
}

// ---------------------------------------------------------------- the selection alone, in two passes
// A forward that needs only the selection (the coarse branch gated off, as in the DiT) takes it in two kernels:
// coarse_scores, a register-tiled product of 64 query by 64 key tiles into global scratch, then coarse_select, one
// warp per query tile. In coarse_fwd every block of 16 query tiles re-reads all of the plane's pooled keys and its
// selection leaves the FMA units idle; here each key tile is read once per 64 query tiles and the selection runs at
// full occupancy.

constexpr int kScoreTile = 64;  // query and key tiles per block of coarse_scores

// Pooled rows transposed in shared memory, [D][kScoreTile + 4]: the 64 tiles' values of one column lie together,
// and the columns of a chain step (d = 4c + t, t < 4) start four banks apart.
constexpr int kScoreLd = kScoreTile + 4;

__host__ __device__ constexpr size_t coarse_scores_smem(int d) {
    return sizeof(float) * 2 * static_cast<size_t>(d) * kScoreLd;
}

// scores[plane][i][j] = scale x pq[i] . pk[j] over the block's 64 x 64 tiles, in chunk_scores's arithmetic (fmaf
// chains t over columns 4c + t, summed (s0 + s1) + (s2 + s3), then scaled), so that both paths select alike.
// Lane (t = lane / 8, rg = lane % 8) of warp kg runs chain t for 8 rows (4 rg + i, 32 + 4 rg + i) by 8 keys
// (4 kg + e, 32 + 4 kg + e): per column, two row and two key float4s serve 64 fmaf, and with one chain per lane
// the 64 accumulators leave registers to load the next column early. The four chains then meet in two shuffle
// rounds, and the 64 x 64 scores leave through shared memory as whole rows. Half of the columns are in shared
// memory while the other half loads.
template <int D>
__device__ __forceinline__ void coarse_scores(const float* __restrict__ pq, const float* __restrict__ pk,
                                              float* __restrict__ scores, int tiles, float scale) {
    constexpr int HALF4 = D / 8;                                  // float4 columns per half row
    constexpr int LOADS = kScoreTile * HALF4 / kThreads;          // a thread's float4s of one matrix per half
    constexpr int SS = kScoreTile + 1;                            // output rows in shared memory
    static_assert(kScoreTile * HALF4 % kThreads == 0 && kScoreTile * SS <= 2 * D * kScoreLd, "staging fits");
    extern __shared__ float4 smem4[];
    float* sQ = reinterpret_cast<float*>(smem4);  // [D][kScoreLd]
    float* sK = sQ + D * kScoreLd;                // [D][kScoreLd]
    const int tid = threadIdx.x, lane = tid & 31, kg = tid >> 5, t = lane >> 3, rg = lane & 7;
    const size_t plane = blockIdx.z;
    const int k0 = blockIdx.x * kScoreTile, q0 = blockIdx.y * kScoreTile;
    const float* q = pq + plane * tiles * D;
    const float* k = pk + plane * tiles * D;

    // Thread f takes tile row f % 64 (rows past the matrix repeat its last row) and float4 column f / 64 of the
    // half: a warp's stores fill 32 consecutive floats of one transposed row.
    float4 gq[LOADS], gk[LOADS];
    auto load = [&](int h) {
#pragma unroll
        for (int u = 0; u < LOADS; ++u) {
            const int f = tid + u * kThreads, r = f % kScoreTile, c4 = h * HALF4 + f / kScoreTile;
            gq[u] = reinterpret_cast<const float4*>(q + static_cast<size_t>(min(q0 + r, tiles - 1)) * D)[c4];
            gk[u] = reinterpret_cast<const float4*>(k + static_cast<size_t>(min(k0 + r, tiles - 1)) * D)[c4];
        }
    };
    auto store = [&](int h) {
#pragma unroll
        for (int u = 0; u < LOADS; ++u) {
            const int f = tid + u * kThreads, r = f % kScoreTile, d = 4 * (h * HALF4 + f / kScoreTile);
            sQ[d * kScoreLd + r] = gq[u].x;
            sQ[(d + 1) * kScoreLd + r] = gq[u].y;
            sQ[(d + 2) * kScoreLd + r] = gq[u].z;
            sQ[(d + 3) * kScoreLd + r] = gq[u].w;
            sK[d * kScoreLd + r] = gk[u].x;
            sK[(d + 1) * kScoreLd + r] = gk[u].y;
            sK[(d + 2) * kScoreLd + r] = gk[u].z;
            sK[(d + 3) * kScoreLd + r] = gk[u].w;
        }
    };
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[i][e] = 0.f;
    // Chain t's steps c over the half's columns 4c + t, in ascending order.
    auto compute = [&](int h) {
#pragma unroll 4
        for (int c = h * D / 8; c < (h + 1) * D / 8; ++c) {
            const float* qd = sQ + (4 * c + t) * kScoreLd;
            const float* kd = sK + (4 * c + t) * kScoreLd;
            const float4 qa = *reinterpret_cast<const float4*>(qd + 4 * rg);
            const float4 qb = *reinterpret_cast<const float4*>(qd + 32 + 4 * rg);
            const float4 ka = *reinterpret_cast<const float4*>(kd + 4 * kg);
            const float4 kb = *reinterpret_cast<const float4*>(kd + 32 + 4 * kg);
            const float qv[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
            const float kv[8] = {ka.x, ka.y, ka.z, ka.w, kb.x, kb.y, kb.z, kb.w};
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int e = 0; e < 8; ++e) acc[i][e] = fmaf(qv[i], kv[e], acc[i][e]);
        }
    };
    load(0);
    store(0);
    __syncthreads();
    load(1);
    compute(0);
    store(1);
    __syncthreads();
    compute(1);

    // Chains t and t ^ 1 meet first (odd t keeps rows 32 + ..., even t rows 4 rg + ...), then the pairs (t < 2
    // keeps keys 4 kg + ..., t >= 2 keys 32 + ...): (s0 + s1) + (s2 + s3), as the order of addends does not matter.
    float pair[4][8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            const float mine = t & 1 ? acc[i + 4][e] : acc[i][e];
            pair[i][e] = mine + __shfl_xor_sync(kFull, t & 1 ? acc[i][e] : acc[i + 4][e], 8);
        }
    }
    __syncthreads();  // every warp is done with sQ and sK: the scores take their place
    float* sS = sQ;   // [kScoreTile][SS]
    const int row0 = (t & 1) * 32 + 4 * rg, key0 = (t >> 1) * 32 + 4 * kg;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float mine = t & 2 ? pair[i][e + 4] : pair[i][e];
            const float theirs = __shfl_xor_sync(kFull, t & 2 ? pair[i][e] : pair[i][e + 4], 16);
            sS[(row0 + i) * SS + key0 + e] = (mine + theirs) * scale;
        }
    }
    __syncthreads();
    const int keys = min(kScoreTile, tiles - k0);
#pragma unroll 4
    for (int f = tid; f < kScoreTile * kScoreTile; f += kThreads) {
        const int r = f / kScoreTile, j = f % kScoreTile;
        if (q0 + r < tiles && j < keys) scores[(plane * tiles + q0 + r) * tiles + k0 + j] = sS[r * SS + j];
    }
}

// The top-k of each score row, one warp per query tile (kThreads / 32 per block, blockIdx.y the plane): the
// selection, the fine kernel's KV ranges and the transpose bytes, as select_rows writes them. SLOTS as there.
template <int SLOTS>
__device__ __forceinline__ void coarse_select(const float* __restrict__ scores, int* __restrict__ selection,
                                              int2* __restrict__ ranges, unsigned char* __restrict__ chosen,
                                              const int* __restrict__ tileStarts, int tiles, int topK) {
    const int queryTile = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
    if (queryTile >= tiles) return;
    const size_t plane = blockIdx.y, row = plane * tiles + queryTile;
    TopKTake out{selection + row * topK, ranges + row * topK, tileStarts,
                 chosen != nullptr ? chosen + plane * tiles * tiles : nullptr, queryTile, tiles,
                 static_cast<int>(threadIdx.x & 31)};
    if constexpr (SLOTS == 0) {
        warp_top_k(scores + row * tiles, topK, out);
    } else {
        warp_top_k_regs<SLOTS>(scores + row * tiles, topK, out);
    }
}

// Backward of the coarse attention in two passes over blocks of B tiles (64, or 32 where shared memory is short),
// each a small fp32 matrix product register-tiled over 256 threads: thread (ty, tx) = (tid / 16, tid % 16) owns block
// rows ty + 16 i (i < B / 16) and, in the score tile, key columns tx + 16 j (j < B / 16); in a D-wide output, the
// float4 columns 4 (tx + 16 g), g < D / 64.
// Tiles past the last are staged as zero rows and get P = dS = 0. Earlier kernels gave each thread one score (two
// dot products read from shared memory for 256 FMAs), which left both passes bound by shared-memory loads:
// 586 and 508 us at Wan-2.1 480p, against 100 and 204 us for the token passes around them (Nsight Compute, H100,
// twelfth session).
// Rows [row0, row0 + n) of a [*, D] fp32 matrix into B shared rows of stride D + 4 (rows past n zero).
template <int D, int B>
__device__ __forceinline__ void stage_block(float* dst, const float* src, int row0, int n) {
    constexpr int C4 = D / 4;
    for (int i = threadIdx.x; i < B * C4; i += blockDim.x) {
        const int r = i / C4, c = i % C4;
        reinterpret_cast<float4*>(dst + r * (D + 4))[c] =
            r < n ? reinterpret_cast<const float4*>(src + static_cast<size_t>(row0 + r) * D)[c] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
}

__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
    return fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, acc))));
}

__device__ __forceinline__ void axpy4(float4& acc, float a, float4 x) {
    acc.x = fmaf(a, x.x, acc.x);
    acc.y = fmaf(a, x.y, acc.y);
    acc.z = fmaf(a, x.z, acc.z);
    acc.w = fmaf(a, x.w, acc.w);
}

// Rows pass, per block of B query tiles: with P = exp(S - lse) and dS = P (dCoarse V^T - delta),
// delta = rowsum(dCoarse x coarse), the pooled-query gradient is scale dS K, written as its per-token share. P and dS
// go to global scratch for the columns pass. Shared memory: coarse_bwd_rows_smem(D, B).
__host__ __device__ constexpr size_t coarse_bwd_rows_smem(int d, int b) {
    return sizeof(float) * (4 * static_cast<size_t>(b) * (d + 4) + b * (b + 4) + 2 * b);
}

template <int D, int B>
__device__ __forceinline__ void coarse_bwd_rows(const float* __restrict__ pq, const float* __restrict__ pk,
                                                const float* __restrict__ pv, const float* __restrict__ coarse,
                                                const float* __restrict__ coarseLse, const float* __restrict__ dCoarse,
                                                float* __restrict__ probs, float* __restrict__ dScores,
                                                float* __restrict__ dpq, const int* __restrict__ tileStarts, int tiles,
                                                float scale) {
    constexpr int LD = D + 4, L4 = LD / 4, LDS = B + 4, G = D / 64, R = B / 16;
    extern __shared__ float4 smem4[];
    float* sQ = reinterpret_cast<float*>(smem4);  // [B][LD]
    float* sDC = sQ + B * LD;                     // [B][LD]
    float* sK = sDC + B * LD;                     // [B][LD]
    float* sV = sK + B * LD;                      // [B][LD]
    float* sDS = sV + B * LD;                     // [B][LDS]
    float* sLse = sDS + B * LDS;                  // [B]
    float* sDelta = sLse + B;                     // [B]
    const float4* q4 = reinterpret_cast<const float4*>(sQ);
    const float4* dc4 = reinterpret_cast<const float4*>(sDC);
    const float4* k4 = reinterpret_cast<const float4*>(sK);
    const float4* v4 = reinterpret_cast<const float4*>(sV);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, ty = tid >> 4, tx = tid & 15;
    const size_t base = static_cast<size_t>(blockIdx.y) * tiles;
    const int q0 = blockIdx.x * B, rows = min(B, tiles - q0);

    stage_block<D, B>(sQ, pq + base * D, q0, rows);
    stage_block<D, B>(sDC, dCoarse + base * D, q0, rows);
    for (int qi = warp; qi < B; qi += kThreads / 32) {
        float s = 0.f;
        if (qi < rows)
            for (int d = lane; d < D; d += 32) s = fmaf(dCoarse[(base + q0 + qi) * D + d], coarse[(base + q0 + qi) * D + d], s);
        s = warp_sum(s);
        if (lane == 0) {
            sDelta[qi] = s;
            sLse[qi] = qi < rows ? coarseLse[base + q0 + qi] : 0.f;
        }
    }

    float4 dq[R][G];
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
        for (int g = 0; g < G; ++g) dq[i][g] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int c0 = 0; c0 < tiles; c0 += B) {
        const int n = min(B, tiles - c0);
        __syncthreads();  // the previous chunk's K and dS are read
        stage_block<D, B>(sK, pk + base * D, c0, n);
        stage_block<D, B>(sV, pv + base * D, c0, n);
        __syncthreads();
        float s[R][R], dp[R][R];
#pragma unroll
        for (int i = 0; i < R; ++i)
#pragma unroll
            for (int j = 0; j < R; ++j) s[i][j] = dp[i][j] = 0.f;
#pragma unroll 4
        for (int c = 0; c < D / 4; ++c) {
            float4 qr[R], dr[R], kr[R], vr[R];
#pragma unroll
            for (int i = 0; i < R; ++i) {
                qr[i] = q4[(ty + 16 * i) * L4 + c];
                dr[i] = dc4[(ty + 16 * i) * L4 + c];
                kr[i] = k4[(tx + 16 * i) * L4 + c];
                vr[i] = v4[(tx + 16 * i) * L4 + c];
            }
#pragma unroll
            for (int i = 0; i < R; ++i)
#pragma unroll
                for (int j = 0; j < R; ++j) {
                    s[i][j] = dot4(qr[i], kr[j], s[i][j]);
                    dp[i][j] = dot4(dr[i], vr[j], dp[i][j]);
                }
        }
#pragma unroll
        for (int i = 0; i < R; ++i) {
            const int qi = ty + 16 * i;
#pragma unroll
            for (int j = 0; j < R; ++j) {
                const int kj = tx + 16 * j;
                float ds = 0.f;
                if (qi < rows && kj < n) {
                    const float pr = expf(s[i][j] * scale - sLse[qi]);
                    ds = pr * (dp[i][j] - sDelta[qi]);
                    const size_t at = (base + q0 + qi) * tiles + c0 + kj;
                    probs[at] = pr;
                    dScores[at] = ds;
                }
                sDS[qi * LDS + kj] = ds;
            }
        }
        __syncthreads();
        for (int kj = 0; kj < n; ++kj) {
            float4 kr[G];
#pragma unroll
            for (int g = 0; g < G; ++g) kr[g] = k4[kj * L4 + tx + 16 * g];
#pragma unroll
            for (int i = 0; i < R; ++i) {
                const float d = sDS[(ty + 16 * i) * LDS + kj];
#pragma unroll
                for (int g = 0; g < G; ++g) axpy4(dq[i][g], d, kr[g]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < R; ++i) {
        const int qi = ty + 16 * i;
        if (qi < rows) {
            const float share = scale / static_cast<float>(tileStarts[q0 + qi + 1] - tileStarts[q0 + qi]);
#pragma unroll
            for (int g = 0; g < G; ++g) {
                const float4 x = dq[i][g];
                reinterpret_cast<float4*>(dpq + (base + q0 + qi) * D)[tx + 16 * g] =
                    make_float4(x.x * share, x.y * share, x.z * share, x.w * share);
            }
        }
    }
}

// Columns pass, per block of B key tiles: dV_pooled = P^T dCoarse, dK_pooled = scale dS^T Q_pooled, written as
// per-token shares.
// Shared memory: coarse_bwd_cols_smem(D, B).
__host__ __device__ constexpr size_t coarse_bwd_cols_smem(int d, int b) {
    return sizeof(float) * (2 * static_cast<size_t>(b) * (d + 4) + 2 * b * (b + 4));
}

template <int D, int B>
__device__ __forceinline__ void coarse_bwd_cols(const float* __restrict__ pq, const float* __restrict__ dCoarse,
                                                const float* __restrict__ probs, const float* __restrict__ dScores,
                                                float* __restrict__ dpk, float* __restrict__ dpv,
                                                const int* __restrict__ tileStarts, int tiles, float scale) {
    constexpr int LD = D + 4, L4 = LD / 4, LDS = B + 4, G = D / 64, R = B / 16;
    extern __shared__ float4 smem4[];
    float* sQ = reinterpret_cast<float*>(smem4);  // [B][LD]: query tiles of the chunk
    float* sDC = sQ + B * LD;                     // [B][LD]
    float* sP = sDC + B * LD;                     // [B queries][LDS]: this block's key columns
    float* sDS = sP + B * LDS;                    // [B queries][LDS]
    const float4* q4 = reinterpret_cast<const float4*>(sQ);
    const float4* dc4 = reinterpret_cast<const float4*>(sDC);

    const int tid = threadIdx.x, ty = tid >> 4, tx = tid & 15;
    const size_t base = static_cast<size_t>(blockIdx.y) * tiles;
    const int k0 = blockIdx.x * B, cols = min(B, tiles - k0);

    float4 dk[R][G], dv[R][G];  // key tiles ty + 16 i
#pragma unroll
    for (int i = 0; i < R; ++i)
#pragma unroll
        for (int g = 0; g < G; ++g) dk[i][g] = dv[i][g] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i0 = 0; i0 < tiles; i0 += B) {
        const int n = min(B, tiles - i0);
        __syncthreads();  // the previous chunk is read
        stage_block<D, B>(sQ, pq + base * D, i0, n);
        stage_block<D, B>(sDC, dCoarse + base * D, i0, n);
        for (int p = tid; p < B * B; p += kThreads) {
            const int ii = p / B, kj = p % B;
            const bool real = ii < n && kj < cols;
            const size_t at = (base + i0 + ii) * tiles + k0 + kj;
            sP[ii * LDS + kj] = real ? probs[at] : 0.f;
            sDS[ii * LDS + kj] = real ? dScores[at] : 0.f;
        }
        __syncthreads();
        for (int ii = 0; ii < n; ++ii) {
            float4 qr[G], dr[G];
#pragma unroll
            for (int g = 0; g < G; ++g) {
                qr[g] = q4[ii * L4 + tx + 16 * g];
                dr[g] = dc4[ii * L4 + tx + 16 * g];
            }
#pragma unroll
            for (int i = 0; i < R; ++i) {
                const float pr = sP[ii * LDS + ty + 16 * i], ds = sDS[ii * LDS + ty + 16 * i];
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    axpy4(dv[i][g], pr, dr[g]);
                    axpy4(dk[i][g], ds, qr[g]);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < R; ++i) {
        const int kj = ty + 16 * i;
        if (kj < cols) {
            const float inv = 1.f / static_cast<float>(tileStarts[k0 + kj + 1] - tileStarts[k0 + kj]);
            const float share = scale * inv;
#pragma unroll
            for (int g = 0; g < G; ++g) {
                const size_t row = (base + k0 + kj) * D;
                const float4 a = dk[i][g], b = dv[i][g];
                reinterpret_cast<float4*>(dpk + row)[tx + 16 * g] =
                    make_float4(a.x * share, a.y * share, a.z * share, a.w * share);
                reinterpret_cast<float4*>(dpv + row)[tx + 16 * g] = make_float4(b.x * inv, b.y * inv, b.z * inv, b.w * inv);
            }
        }
    }
}

// ---------------------------------------------------------------- transposed selection (fine backward)

// Runs of consecutive query tiles that chose KV tile kv of a plane: one warp walks chosen[plane][kv][0..tiles).
// A run starts at q when q is chosen and q - 1 is not, and ends after q when q + 1 is not.
struct Runs {
    const unsigned char* row;
    int tiles;
    __device__ __forceinline__ bool at(int q) const { return q >= 0 && q < tiles && row[q] != 0; }
};

// counts[plane * tiles + kv] = number of runs (one warp per list).
__device__ __forceinline__ void transpose_count(const unsigned char* __restrict__ chosen, int* __restrict__ counts,
                                                int lists, int tiles) {
    const int lane = threadIdx.x & 31;
    const long long list = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    if (list >= lists) return;
    const Runs runs{chosen + list * tiles, tiles};
    int n = 0;
    for (int q = lane; q < tiles; q += 32) n += runs.at(q) && !runs.at(q - 1);
    n = warp_sum(n);
    if (lane == 0) counts[list] = n;
}

// Exclusive prefix sums of counts into offsets[0 .. n], one block of 1024 threads walking the array in chunks.
__device__ __forceinline__ void scan(const int* __restrict__ counts, int* __restrict__ offsets, int n) {
    __shared__ int warpTotals[32];
    __shared__ int carry;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid == 0) carry = 0;
    __syncthreads();
    for (int base = 0; base < n; base += 1024) {
        const int i = base + tid;
        const int x = i < n ? counts[i] : 0;
        int incl = x;
#pragma unroll
        for (int m = 1; m < 32; m <<= 1) {
            const int y = __shfl_up_sync(kFull, incl, m);
            if (lane >= m) incl += y;
        }
        if (lane == 31) warpTotals[warp] = incl;
        __syncthreads();
        if (warp == 0) {
            int t = warpTotals[lane];
#pragma unroll
            for (int m = 1; m < 32; m <<= 1) {
                const int y = __shfl_up_sync(kFull, t, m);
                if (lane >= m) t += y;
            }
            warpTotals[lane] = t;  // inclusive totals of warps 0..lane
        }
        __syncthreads();
        const int before = carry + (warp > 0 ? warpTotals[warp - 1] : 0) + incl - x;
        if (i < n) offsets[i] = before;
        __syncthreads();
        if (tid == 1023) carry = before + x;
        __syncthreads();
    }
    if (tid == 0) offsets[n] = carry;
}

// ranges[offsets[list] + r] = {first token of run r, end token of run r}, runs in ascending order.
__device__ __forceinline__ void transpose_fill(const unsigned char* __restrict__ chosen,
                                               const int* __restrict__ offsets, int2* __restrict__ ranges,
                                               const int* __restrict__ tileStarts, int lists, int tiles) {
    const int lane = threadIdx.x & 31;
    const long long list = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    if (list >= lists) return;
    const Runs runs{chosen + list * tiles, tiles};
    int2* out = ranges + offsets[list];
    int starts = 0, ends = 0;
    for (int base = 0; base < tiles; base += 32) {
        const int q = base + lane;
        const bool start = runs.at(q) && !runs.at(q - 1);
        const bool end = runs.at(q) && !runs.at(q + 1);
        const unsigned startMask = __ballot_sync(kFull, start), endMask = __ballot_sync(kFull, end);
        if (start) out[starts + __popc(startMask & lanes_below())].x = tileStarts[q];
        if (end) out[ends + __popc(endMask & lanes_below())].y = tileStarts[q + 1];
        starts += __popc(startMask);
        ends += __popc(endMask);
    }
}

// ---------------------------------------------------------------- packed blocks' lists (fine forward)

// The list of a packed block of the fine kernel (tile_attention_sm90.cu's _bm64p_ entries) for one plane: the
// union of the selections of group.y consecutive query tiles from group.x, in ascending KV tile order, with
// members[r] bit s set when tile group.x + s selected range r; the tail of the list's `capacity` entries gets
// empty ranges, which the fine kernel's walk passes over.
__device__ __forceinline__ void pack_union(const int* __restrict__ selection, const int2* __restrict__ groups,
                                           const int* __restrict__ tileStarts, int2* __restrict__ ranges,
                                           unsigned char* __restrict__ members, int groupCount, int tiles, int topK,
                                           int capacity) {
    extern __shared__ unsigned char chosenBy[];  // [tiles]: bit s when the group's tile s selected the KV tile
    __shared__ int warpCounts[kThreads / 32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int plane = blockIdx.y;
    const int2 group = groups[blockIdx.x];
    for (int t = tid; t < tiles; t += kThreads) chosenBy[t] = 0;
    __syncthreads();
    for (int s = 0; s < group.y; ++s) {  // a selection names each tile once: no two threads write one byte per pass
        const int* sel = selection + (static_cast<size_t>(plane) * tiles + group.x + s) * topK;
        for (int i = tid; i < topK; i += kThreads) chosenBy[sel[i]] |= 1 << s;
        __syncthreads();
    }
    const size_t list = static_cast<size_t>(plane) * groupCount + blockIdx.x;
    int2* out = ranges + list * capacity;
    unsigned char* outMembers = members + list * capacity;
    int written = 0;
    for (int base = 0; base < tiles; base += kThreads) {
        const int t = base + tid;
        const int m = t < tiles ? chosenBy[t] : 0;
        const unsigned ballot = __ballot_sync(kFull, m != 0);
        if (lane == 0) warpCounts[warp] = __popc(ballot);
        __syncthreads();
        int before = written;
        for (int w = 0; w < warp; ++w) before += warpCounts[w];
        if (m != 0) {
            const int r = before + __popc(ballot & lanes_below());
            out[r] = make_int2(tileStarts[t], tileStarts[t + 1]);
            outMembers[r] = static_cast<unsigned char>(m);
        }
        for (int w = 0; w < kThreads / 32; ++w) written += warpCounts[w];
        __syncthreads();
    }
    for (int r = written + tid; r < capacity; r += kThreads) {
        out[r] = make_int2(0, 0);
        outMembers[r] = 0;
    }
}

}  // namespace vsa
}  // namespace tileattn

#define TILEATTN_VSA_TOKEN_ENTRIES(TN, T, D)                                                                     \
    extern "C" __global__ void __launch_bounds__(128) tileattn_vsa_pool_##TN##_d##D(                            \
        const T* q, const T* k, const T* v, float* pq, float* pk, float* pv, const int* tileStarts, int tiles,   \
        int S) {                                                                                                 \
        tileattn::vsa::pool<T, D>(q, k, v, pq, pk, pv, tileStarts, tiles, S);                                    \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(128) tileattn_vsa_combine_##TN##_d##D(                         \
        const T* fine, const float* coarse, const T* gate, T* out, const int* tileStarts, int tiles, int S) {    \
        tileattn::vsa::combine<T, D>(fine, coarse, gate, out, tileStarts, tiles, S);                             \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(128) tileattn_vsa_coarse_grad_in_##TN##_d##D(                  \
        const T* dOut, const T* gate, const float* coarse, T* dGate, float* dCoarse, const int* tileStarts,      \
        int tiles, int S) {                                                                                      \
        tileattn::vsa::coarse_grad_in<T, D>(dOut, gate, coarse, dGate, dCoarse, tileStarts, tiles, S);           \
    }

TILEATTN_VSA_TOKEN_ENTRIES(bf16, __nv_bfloat16, 64)
TILEATTN_VSA_TOKEN_ENTRIES(bf16, __nv_bfloat16, 128)
TILEATTN_VSA_TOKEN_ENTRIES(f16, __half, 64)
TILEATTN_VSA_TOKEN_ENTRIES(f16, __half, 128)

#define TILEATTN_VSA_COARSE_ENTRIES(D)                                                                           \
    extern "C" __global__ void __launch_bounds__(256, 2) tileattn_vsa_coarse_fwd_d##D(                          \
        const float* pq, const float* pk, const float* pv, float* coarse, float* coarseLse, int* selection,      \
        int2* ranges, unsigned char* chosen, const int* tileStarts, int tiles, int topK, int qt, float scale) {  \
        tileattn::vsa::coarse_fwd<D>(pq, pk, pv, coarse, coarseLse, selection, ranges, chosen, tileStarts,       \
                                     tiles, topK, qt, scale);                                                    \
    }                                                                                                            \
    TILEATTN_VSA_COARSE_BWD_ENTRIES(D, 64, )                                                                    \
    TILEATTN_VSA_COARSE_BWD_ENTRIES(D, 32, b32_)

// The coarse backward's passes over blocks of B tiles: NAME_d<D> for B = 64, NAME_b32_d<D> for B = 32.
#define TILEATTN_VSA_COARSE_BWD_ENTRIES(D, B, PREFIX)                                                            \
    extern "C" __global__ void __launch_bounds__(256) tileattn_vsa_coarse_bwd_rows_##PREFIX##d##D(              \
        const float* pq, const float* pk, const float* pv, const float* coarse, const float* coarseLse,          \
        const float* dCoarse, float* probs, float* dScores, float* dpq, const int* tileStarts, int tiles,       \
        float scale) {                                                                                           \
        tileattn::vsa::coarse_bwd_rows<D, B>(pq, pk, pv, coarse, coarseLse, dCoarse, probs, dScores, dpq,        \
                                             tileStarts, tiles, scale);                                          \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(256) tileattn_vsa_coarse_bwd_cols_##PREFIX##d##D(              \
        const float* pq, const float* dCoarse, const float* probs, const float* dScores, float* dpk, float* dpv, \
        const int* tileStarts, int tiles, float scale) {                                                         \
        tileattn::vsa::coarse_bwd_cols<D, B>(pq, dCoarse, probs, dScores, dpk, dpv, tileStarts, tiles, scale);   \
    }

TILEATTN_VSA_COARSE_ENTRIES(64)
TILEATTN_VSA_COARSE_ENTRIES(128)

#define TILEATTN_VSA_SCORES_ENTRY(D)                                                                             \
    extern "C" __global__ void __launch_bounds__(256, 2) tileattn_vsa_coarse_scores_d##D(                       \
        const float* pq, const float* pk, float* scores, int tiles, float scale) {                               \
        tileattn::vsa::coarse_scores<D>(pq, pk, scores, tiles, scale);                                           \
    }

TILEATTN_VSA_SCORES_ENTRY(64)
TILEATTN_VSA_SCORES_ENTRY(128)

// One entry per register row length (SLOTS keys a lane: rows of up to 32 SLOTS tiles; 0 reads the row from memory
// at every step), so that short rows do not pay the registers of long ones.
#define TILEATTN_VSA_SELECT_ENTRY(SLOTS)                                                                         \
    extern "C" __global__ void __launch_bounds__(256) tileattn_vsa_coarse_select_s##SLOTS(                      \
        const float* scores, int* selection, int2* ranges, unsigned char* chosen, const int* tileStarts,         \
        int tiles, int topK) {                                                                                   \
        tileattn::vsa::coarse_select<SLOTS>(scores, selection, ranges, chosen, tileStarts, tiles, topK);         \
    }

TILEATTN_VSA_SELECT_ENTRY(0)
TILEATTN_VSA_SELECT_ENTRY(4)
TILEATTN_VSA_SELECT_ENTRY(8)
TILEATTN_VSA_SELECT_ENTRY(12)
TILEATTN_VSA_SELECT_ENTRY(16)
TILEATTN_VSA_SELECT_ENTRY(20)
TILEATTN_VSA_SELECT_ENTRY(24)
TILEATTN_VSA_SELECT_ENTRY(28)
TILEATTN_VSA_SELECT_ENTRY(32)
TILEATTN_VSA_SELECT_ENTRY(36)
TILEATTN_VSA_SELECT_ENTRY(40)
TILEATTN_VSA_SELECT_ENTRY(44)
TILEATTN_VSA_SELECT_ENTRY(48)

extern "C" __global__ void __launch_bounds__(256) tileattn_vsa_transpose_count(const unsigned char* chosen,
                                                                                int* counts, int lists, int tiles) {
    tileattn::vsa::transpose_count(chosen, counts, lists, tiles);
}

extern "C" __global__ void __launch_bounds__(1024) tileattn_vsa_scan(const int* counts, int* offsets, int n) {
    tileattn::vsa::scan(counts, offsets, n);
}

extern "C" __global__ void __launch_bounds__(256) tileattn_vsa_transpose_fill(const unsigned char* chosen,
                                                                               const int* offsets, int2* ranges,
                                                                               const int* tileStarts, int lists,
                                                                               int tiles) {
    tileattn::vsa::transpose_fill(chosen, offsets, ranges, tileStarts, lists, tiles);
}

// Grid (groups, P) x 256 threads, dynamic shared memory `tiles` bytes; ranges and members point at the packed
// lists' part of their arrays (list plane * groupCount + group at list * capacity).
extern "C" __global__ void __launch_bounds__(256) tileattn_vsa_pack_union(const int* selection, const int2* groups,
                                                                           const int* tileStarts, int2* ranges,
                                                                           unsigned char* members, int groupCount,
                                                                           int tiles, int topK, int capacity) {
    tileattn::vsa::pack_union(selection, groups, tileStarts, ranges, members, groupCount, tiles, topK, capacity);
}
