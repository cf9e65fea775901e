// Block-sparse attention forward over tile-ordered tokens: STA, dense, and any other mask that can be written
// as lists of KV token ranges per query block. Portable path: mma.sync m16n8k16, ldmatrix, cp.async double
// buffering; builds for sm_80 and runs unchanged on sm_90a.
//
// ABI (all tensors contiguous, device pointers):
//   q, k, v, o   [B, heads, S, D] of T (bf16 or fp16); tokens in tile order, text tokens after the video.
//   lse          [B, heads, S] float, natural-log log-sum-exp of the scaled scores per row, or null.
//   qblocks      int4 per query block {rowStart, rowCount, slot, unused}; a block never crosses a query tile,
//                so all its rows share one KV list. rowCount in [1, BM]. Heaviest blocks first helps balance.
//   listOf       int [heads * slots]: the KV list of (head, slot). Heads with identical windows share lists.
//   rangeOffsets int [lists + 1]: the ranges of list l are ranges[rangeOffsets[l] .. rangeOffsets[l+1]).
//   ranges       int2 {start, end} of KV tokens, end > start, ascending and disjoint within a list.
//   scaleLog2    softmax scale * log2(e): scores are scaled in fp32 after QK^T and exponentiated with exp2.
// Grid: (number of query blocks, heads, B); block: THREADS; dynamic shared memory: SMEM bytes (see Config).
// Keys past a range's end are masked only in the last, partial KV block of that range.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace tileattn {

template <int D_, int NWARPS_, int MT_, int BN_, bool QREG_, bool PIPE_ = false, bool LAZY_ = false>
struct Config {
    static constexpr int D = D_;
    static constexpr int NWARPS = NWARPS_;
    static constexpr int MT = MT_;          // 16-row m-tiles per warp: 2 halves the K/V fragment traffic per row
    static constexpr int BN = BN_;
    static constexpr bool QREG = QREG_;     // keep Q fragments in registers instead of re-reading shared memory
    static constexpr bool PIPE = PIPE_;     // compute the next block's scores while this block's softmax runs
    static constexpr bool LAZY = LAZY_;     // rescale the accumulators only when a row maximum moved
    static constexpr int THREADS = NWARPS * 32;
    static constexpr int BM = NWARPS * 16 * MT;
    static constexpr int Q_ELEMS = BM * D;
    static constexpr int KV_ELEMS = BN * D;
    static constexpr int SMEM = (Q_ELEMS + 4 * KV_ELEMS) * 2;  // Q + two stages of K and V
    static constexpr int MIN_BLOCKS = (THREADS >= 256) ? 1 : 2;
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int srcBytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

template <typename T> struct Mma;

template <> struct Mma<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        uint32_t r;
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};

template <> struct Mma<__half> {
    static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
        uint32_t r;
        asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};

// Shared tiles are rows of D elements in 16-byte chunks; chunk c of row r sits at c ^ (r & 7) so that the eight
// rows one ldmatrix phase reads fall in eight different bank groups.
template <int D>
__device__ __forceinline__ int swizzled(int row, int chunk) {
    return row * D + ((chunk ^ (row & 7)) << 3);
}

// Copies rows [row0, row0 + ROWS) of a [*, D] matrix into a swizzled shared tile; rows at or past rowLimit are
// zero-filled (never read from global), so masked keys meet zeros in V rather than whatever memory holds.
template <int ROWS, int D, int THREADS, typename T>
__device__ __forceinline__ void load_rows(T* tile, const T* src, int row0, int rowLimit, int tid) {
    constexpr int CHUNKS = D / 8;
    constexpr int TOTAL = ROWS * CHUNKS;
    static_assert(TOTAL % THREADS == 0, "tile chunks must divide evenly among threads");
#pragma unroll
    for (int j = 0; j < TOTAL / THREADS; ++j) {
        int i = tid + j * THREADS;
        int r = i / CHUNKS, c = i % CHUNKS;
        bool real = row0 + r < rowLimit;
        const T* g = src + static_cast<size_t>(real ? row0 + r : row0) * D + c * 8;
        cp_async16(smem_addr(tile + swizzled<D>(r, c)), g, real ? 16 : 0);
    }
}

// Per-warp state and the four steps of one KV block, shared by both loop schedules.
template <typename T, typename C>
struct WarpTile {
    static constexpr int D = C::D, BN = C::BN, MT = C::MT;
    static constexpr int NT = BN / 8;   // score n-tiles per m-tile
    static constexpr int DT = D / 8;    // output n-tiles per m-tile
    using Scores = float[MT][NT][4];

    float acc[MT][DT][4];
    float rowMax[MT][2], rowSum[MT][2];
    uint32_t qf[C::QREG ? MT : 1][C::QREG ? D / 16 : 1][4];
    const T* sQ;
    int warpRow, lane;

    __device__ __forceinline__ void init(const T* q, int row, int ln) {
        sQ = q;
        warpRow = row;
        lane = ln;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int dt = 0; dt < DT; ++dt)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[mt][dt][e] = 0.f;
            rowMax[mt][0] = rowMax[mt][1] = -INFINITY;
            rowSum[mt][0] = rowSum[mt][1] = 0.f;
        }
    }

    __device__ __forceinline__ void loadQFragments() {
        if constexpr (C::QREG) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int ks = 0; ks < D / 16; ++ks)
                    ldmatrix_x4(qf[mt][ks], smem_addr(sQ + swizzled<D>(warpRow + mt * 16 + (lane & 15), ks * 2 + (lane >> 4))));
        }
    }

    __device__ __forceinline__ void scores(Scores& s, const T* sK) const {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                if constexpr (C::QREG) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) a[mt][e] = qf[mt][ks][e];
                } else {
                    ldmatrix_x4(a[mt], smem_addr(sQ + swizzled<D>(warpRow + mt * 16 + (lane & 15), ks * 2 + (lane >> 4))));
                }
            }
#pragma unroll
            for (int np = 0; np < BN / 16; ++np) {
                uint32_t b[4];
                const int mi = lane >> 3;
                ldmatrix_x4(b, smem_addr(sK + swizzled<D>(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1))));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    Mma<T>::run(s[mt][2 * np], a[mt], b[0], b[1]);
                    Mma<T>::run(s[mt][2 * np + 1], a[mt], b[2], b[3]);
                }
            }
        }
    }

    // Keys at or past kEnd get -inf; only the last block of a range can hold any.
    __device__ __forceinline__ void mask(Scores& s, int kb, int kEnd) const {
        if (kb + BN > kEnd) {
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const int col = kb + nt * 8 + 2 * (lane & 3);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    if (col >= kEnd) { s[mt][nt][0] = -INFINITY; s[mt][nt][2] = -INFINITY; }
                    if (col + 1 >= kEnd) { s[mt][nt][1] = -INFINITY; s[mt][nt][3] = -INFINITY; }
                }
            }
        }
    }

    // Online softmax; each thread holds rows lane/4 and lane/4 + 8 of each m-tile, spread over a quad.
    __device__ __forceinline__ void softmax(Scores& s, float scaleLog2) {
        float alpha[MT][2];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float mx = -INFINITY;
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float newMax = fmaxf(rowMax[mt][h], mx * scaleLog2);
                alpha[mt][h] = fast_exp2(rowMax[mt][h] - newMax);
                rowMax[mt][h] = newMax;
                float sum = 0.f;
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) {
                    s[mt][nt][2 * h] = fast_exp2(fmaf(s[mt][nt][2 * h], scaleLog2, -newMax));
                    s[mt][nt][2 * h + 1] = fast_exp2(fmaf(s[mt][nt][2 * h + 1], scaleLog2, -newMax));
                    sum += s[mt][nt][2 * h] + s[mt][nt][2 * h + 1];
                }
                rowSum[mt][h] = rowSum[mt][h] * alpha[mt][h] + sum;
            }
        }
        bool rescale = true;
        if constexpr (C::LAZY) {
            bool moved = false;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) moved |= (alpha[mt][0] != 1.f) | (alpha[mt][1] != 1.f);
            rescale = __any_sync(0xffffffffu, moved);
        }
        if (rescale) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int dt = 0; dt < DT; ++dt) {
                    acc[mt][dt][0] *= alpha[mt][0];
                    acc[mt][dt][1] *= alpha[mt][0];
                    acc[mt][dt][2] *= alpha[mt][1];
                    acc[mt][dt][3] *= alpha[mt][1];
                }
        }
    }

    __device__ __forceinline__ void accumulate(const Scores& p, const T* sV) {
#pragma unroll
        for (int ks = 0; ks < BN / 16; ++ks) {
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                a[mt][0] = Mma<T>::pack(p[mt][2 * ks][0], p[mt][2 * ks][1]);
                a[mt][1] = Mma<T>::pack(p[mt][2 * ks][2], p[mt][2 * ks][3]);
                a[mt][2] = Mma<T>::pack(p[mt][2 * ks + 1][0], p[mt][2 * ks + 1][1]);
                a[mt][3] = Mma<T>::pack(p[mt][2 * ks + 1][2], p[mt][2 * ks + 1][3]);
            }
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                uint32_t b[4];
                const int mi = lane >> 3;
                ldmatrix_x4_trans(b, smem_addr(sV + swizzled<D>(ks * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1))));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    Mma<T>::run(acc[mt][2 * dp], a[mt], b[0], b[1]);
                    Mma<T>::run(acc[mt][2 * dp + 1], a[mt], b[2], b[3]);
                }
            }
        }
    }

    __device__ __forceinline__ void store(T* oh, float* lseRow, int rowStart, int rowCount) const {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                float sum = rowSum[mt][h];
                sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                sum += __shfl_xor_sync(0xffffffffu, sum, 2);
                const float inv = 1.f / sum;
                const int local = warpRow + mt * 16 + (lane >> 2) + 8 * h;
                if (local < rowCount) {
                    const int row = rowStart + local;
                    T* dst = oh + static_cast<size_t>(row) * D + 2 * (lane & 3);
#pragma unroll
                    for (int dt = 0; dt < DT; ++dt) {
                        *reinterpret_cast<uint32_t*>(dst + dt * 8) =
                            Mma<T>::pack(acc[mt][dt][2 * h] * inv, acc[mt][dt][2 * h + 1] * inv);
                    }
                    if (lseRow != nullptr && (lane & 3) == 0) {
                        lseRow[row] = (rowMax[mt][h] + log2f(sum)) * 0.69314718055994530942f;
                    }
                }
            }
        }
    }
};

// Walks the KV blocks of one list: BN keys at a time through each range in turn.
struct KvCursor {
    int r, kb, end;
    __device__ __forceinline__ bool valid(int rEnd) const { return r < rEnd; }
    __device__ __forceinline__ void start(const int2* ranges, int first, int rEnd) {
        r = first;
        if (r < rEnd) {
            int2 x = ranges[r];
            kb = x.x;
            end = x.y;
        }
    }
    template <int BN>
    __device__ __forceinline__ void advance(const int2* ranges, int rEnd) {
        if (r >= rEnd) return;
        kb += BN;
        if (kb >= end) start(ranges, r + 1, rEnd);
    }
};

template <typename T, typename C>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS)
tile_attention_fwd(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ o,
                   float* __restrict__ lse, const int4* __restrict__ qblocks, const int* __restrict__ listOf,
                   const int* __restrict__ rangeOffsets, const int2* __restrict__ ranges, int slots, int heads, int S,
                   float scaleLog2) {
    constexpr int D = C::D, BN = C::BN, THREADS = C::THREADS, BM = C::BM;

    extern __shared__ __align__(128) unsigned char smemRaw[];
    T* sQ = reinterpret_cast<T*>(smemRaw);
    T* sK = sQ + C::Q_ELEMS;         // [2][BN*D]
    T* sV = sK + 2 * C::KV_ELEMS;    // [2][BN*D]

    const int tid = threadIdx.x;
    const int4 qb = qblocks[blockIdx.x];
    const int head = blockIdx.y, batch = blockIdx.z;
    const int rowStart = qb.x, rowCount = qb.y;
    const int list = listOf[head * slots + qb.z];
    const int rEnd = rangeOffsets[list + 1];

    const size_t headOffset = (static_cast<size_t>(batch) * heads + head) * static_cast<size_t>(S) * D;
    const T* kh = k + headOffset;
    const T* vh = v + headOffset;

    WarpTile<T, C> w;
    w.init(sQ, (tid >> 5) * 16 * C::MT, tid & 31);
    typename WarpTile<T, C>::Scores sA, sB;

    KvCursor cur;
    cur.start(ranges, rangeOffsets[list], rEnd);
    load_rows<BM, D, THREADS>(sQ, q + headOffset, rowStart, rowStart + rowCount, tid);

    if constexpr (!C::PIPE) {
        // Two stages of K and V; block j+1 loads while block j computes; two barriers per block.
        load_rows<BN, D, THREADS>(sK, kh, cur.kb, cur.end, tid);
        load_rows<BN, D, THREADS>(sV, vh, cur.kb, cur.end, tid);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        w.loadQFragments();
        int stage = 0;
        for (;;) {
            KvCursor next = cur;
            next.template advance<BN>(ranges, rEnd);
            const bool hasNext = next.valid(rEnd);
            if (hasNext) {
                load_rows<BN, D, THREADS>(sK + (stage ^ 1) * C::KV_ELEMS, kh, next.kb, next.end, tid);
                load_rows<BN, D, THREADS>(sV + (stage ^ 1) * C::KV_ELEMS, vh, next.kb, next.end, tid);
            }
            cp_async_commit();
            cp_async_wait<1>();
            __syncthreads();
            w.scores(sA, sK + stage * C::KV_ELEMS);
            w.mask(sA, cur.kb, cur.end);
            w.softmax(sA, scaleLog2);
            w.accumulate(sA, sV + stage * C::KV_ELEMS);
            __syncthreads();  // the next iteration's loads overwrite the stage just read
            if (!hasNext) break;
            cur = next;
            stage ^= 1;
        }
    } else {
        // Scores of block j+1 are computed in the same straight-line code as block j's softmax and P·V, so the
        // tensor pipe has independent work while the exponentials run. K runs one block ahead of V: at block j,
        // K[j+1] and V[j] are resident, K[j+2] and V[j+1] load. One barrier per block.
        KvCursor next = cur, next2;
        next.template advance<BN>(ranges, rEnd);
        next2 = next;
        next2.template advance<BN>(ranges, rEnd);
        load_rows<BN, D, THREADS>(sK, kh, cur.kb, cur.end, tid);
        cp_async_commit();
        if (next.valid(rEnd)) load_rows<BN, D, THREADS>(sK + C::KV_ELEMS, kh, next.kb, next.end, tid);
        load_rows<BN, D, THREADS>(sV, vh, cur.kb, cur.end, tid);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        w.loadQFragments();
        w.scores(sA, sK);
        w.mask(sA, cur.kb, cur.end);

        int j = 0;
        auto step = [&](typename WarpTile<T, C>::Scores& now, typename WarpTile<T, C>::Scores& ahead) -> bool {
            cp_async_wait<0>();
            __syncthreads();  // K[j+1], V[j] landed; every warp is done with block j-1's stages
            if (next2.valid(rEnd)) load_rows<BN, D, THREADS>(sK + (j & 1) * C::KV_ELEMS, kh, next2.kb, next2.end, tid);
            if (next.valid(rEnd)) load_rows<BN, D, THREADS>(sV + ((j + 1) & 1) * C::KV_ELEMS, vh, next.kb, next.end, tid);
            cp_async_commit();
            w.scores(ahead, sK + ((j + 1) & 1) * C::KV_ELEMS);  // stale data past the last block: never used
            w.softmax(now, scaleLog2);
            w.accumulate(now, sV + (j & 1) * C::KV_ELEMS);
            if (!next.valid(rEnd)) return false;
            w.mask(ahead, next.kb, next.end);
            next = next2;
            next2.template advance<BN>(ranges, rEnd);
            ++j;
            return true;
        };
        for (;;) {
            if (!step(sA, sB)) break;
            if (!step(sB, sA)) break;
        }
    }

    w.store(o + headOffset, lse != nullptr ? lse + (static_cast<size_t>(batch) * heads + head) * S : nullptr, rowStart,
            rowCount);
}

}  // namespace tileattn
