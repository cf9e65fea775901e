// Device code shared by the block-sparse attention forward kernels (tile_attention.cu, tile_attention_sm90.cu,
// tile_attention_sm90_ws.cu): asynchronous row copies into swizzled shared tiles, the walk over a query block's
// KV ranges, and the per-warp online softmax and output store. All kernels hold scores and outputs in the same
// register layout (the m16n8 accumulator layout, 16 query rows per warp), so these pieces serve them all.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace tileattn {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int srcBytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// Two floats rounded into one register of two 16-bit values, lo in the low half.
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);

template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// Copies rows [row0, row0 + ROWS) of D values (row r at src + r * rowStride) into a shared tile laid out by
// Layout::offset(row, chunk) (chunk = 16-byte column). Rows at or past rowLimit are zero-filled and never read from
// global memory, so a masked key meets zeros in V rather than whatever memory holds. row0 < rowLimit always.
template <int ROWS, int D, int THREADS, typename Layout, typename T>
__device__ __forceinline__ void load_rows(T* tile, const T* src, int row0, int rowLimit, int tid, int rowStride = D) {
    constexpr int CHUNKS = D / 8;
    constexpr int TOTAL = ROWS * CHUNKS;
    static_assert(TOTAL % THREADS == 0, "tile chunks must divide evenly among threads");
#pragma unroll
    for (int j = 0; j < TOTAL / THREADS; ++j) {
        const int i = tid + j * THREADS;
        const int r = i / CHUNKS, c = i % CHUNKS;
        const bool real = row0 + r < rowLimit;
        const T* g = src + static_cast<size_t>(real ? row0 + r : row0) * rowStride + c * 8;
        cp_async16(smem_addr(tile + Layout::offset(r, c)), g, real ? 16 : 0);
    }
}

// Walks the KV blocks of one list: BN keys at a time through each range in turn.
struct KvCursor {
    int r, kb, end;
    __device__ __forceinline__ bool valid(int rEnd) const { return r < rEnd; }
    __device__ __forceinline__ void start(const int2* ranges, int first, int rEnd) {
        r = first;
        if (r < rEnd) {
            const int2 x = ranges[r];
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

// The keys of one list laid end to end, range after range ("packed positions"), so that a block of BN positions
// may span several ranges: a list of partial tiles then costs the blocks its real keys fill rather than one block
// per range. Each thread maps only increasing positions, so its cursor moves forward and reads every range once.
// Walks on the copy path cost (eight per thread and step measured 21% slower steps, docs/benchmarks.md,
// 2026-12-06), so the Hopper forward walks one row per thread a block ahead into a shared row table.
struct PackedKeys {
    const int2* ranges;
    int r, base;  // range r = {x, y} holds the positions [base, base + y - x)
    int2 cur;

    __device__ __forceinline__ void start(const int2* list) {
        ranges = list;
        r = 0;
        base = 0;
        cur = ranges[0];
    }
    // The key row at position p, for p below the list's total and at or past every position asked before.
    __device__ __forceinline__ int row(int p) {
        while (p >= base + cur.y - cur.x) {
            base += cur.y - cur.x;
            cur = ranges[++r];
        }
        return cur.x + p - base;
    }
};

// Copies ranges [first, end) into `staged` when they fit its CAPACITY entries and returns the list to walk: the
// staged copy, or the global one for longer lists. The caller synchronises before anyone reads the copy.
template <int CAPACITY, int THREADS>
__device__ __forceinline__ const int2* stage_ranges(int2* staged, const int2* ranges, int first, int end, int tid) {
    const int n = end - first;
    if (n > CAPACITY) return ranges + first;
    for (int i = tid; i < n; i += THREADS) staged[i] = ranges[first + i];
    return staged;
}

// Total keys of a list of n ranges, summed by one warp (every lane gets it).
__device__ __forceinline__ int packed_total(const int2* list, int n, int lane) {
    int total = 0;
    for (int r = lane; r < n; r += 32) total += list[r].y - list[r].x;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
    return total;
}

// Scores of 16 query rows x NT*8 keys and outputs of 16 rows x DT*8 dims per warp. Each thread holds rows
// lane/4 and lane/4 + 8, columns 8j + 2(lane%4) + {0,1}: elements [j][0..1] and [j][2..3].
template <int NT, int DT>
struct RowState {
    float acc[DT][4];
    float rowMax[2], rowSum[2];

    __device__ __forceinline__ void init() {
#pragma unroll
        for (int dt = 0; dt < DT; ++dt)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[dt][e] = 0.f;
        rowMax[0] = rowMax[1] = -INFINITY;
        rowSum[0] = rowSum[1] = 0.f;
    }

    // Keys at or past kEnd get -inf; only the last block of a range can hold any.
    static __device__ __forceinline__ void mask(float (&s)[NT][4], int kb, int kEnd, int lane) {
        if (kb + NT * 8 > kEnd) {
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                const int col = kb + nt * 8 + 2 * (lane & 3);
                if (col >= kEnd) { s[nt][0] = -INFINITY; s[nt][2] = -INFINITY; }
                if (col + 1 >= kEnd) { s[nt][1] = -INFINITY; s[nt][3] = -INFINITY; }
            }
        }
    }

    // Online softmax in the log2 domain: s becomes exp2(s * scaleLog2 - rowMax) and the row sums absorb it; alpha
    // gets the factor the accumulators must be scaled by, which update leaves to the caller so that a kernel whose
    // P·V product is still running on the accumulators can apply it later. Every block holds at least one real
    // key per row, so the new maximum is finite, unless EMPTY_ROWS: then a row may have met only masked keys so
    // far, and its probabilities and alpha must come out 0 rather than exp2(-inf + inf).
    template <bool EMPTY_ROWS = false>
    __device__ __forceinline__ void update(float (&s)[NT][4], float scaleLog2, float (&alpha)[2]) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float mx = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * h], s[nt][2 * h + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float newMax = fmaxf(rowMax[h], mx * scaleLog2);
            const float base = EMPTY_ROWS && newMax == -INFINITY ? 0.f : newMax;
            alpha[h] = fast_exp2(rowMax[h] - base);
            rowMax[h] = newMax;
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                s[nt][2 * h] = fast_exp2(fmaf(s[nt][2 * h], scaleLog2, -base));
                s[nt][2 * h + 1] = fast_exp2(fmaf(s[nt][2 * h + 1], scaleLog2, -base));
                sum += s[nt][2 * h] + s[nt][2 * h + 1];
            }
            rowSum[h] = rowSum[h] * alpha[h] + sum;
        }
    }

    __device__ __forceinline__ void rescale(const float (&alpha)[2]) {
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
            acc[dt][0] *= alpha[0];
            acc[dt][1] *= alpha[0];
            acc[dt][2] *= alpha[1];
            acc[dt][3] *= alpha[1];
        }
    }

    template <bool EMPTY_ROWS = false>
    __device__ __forceinline__ void softmax(float (&s)[NT][4], float scaleLog2) {
        float alpha[2];
        update<EMPTY_ROWS>(s, scaleLog2, alpha);
        rescale(alpha);
    }

    // Probabilities of keys 16ks .. 16ks+15 as the A operand of a k16 matrix instruction.
    template <typename T>
    static __device__ __forceinline__ void probabilities(const float (&p)[NT][4], int ks, uint32_t (&a)[4]) {
        a[0] = pack2<T>(p[2 * ks][0], p[2 * ks][1]);
        a[1] = pack2<T>(p[2 * ks][2], p[2 * ks][3]);
        a[2] = pack2<T>(p[2 * ks + 1][0], p[2 * ks + 1][1]);
        a[3] = pack2<T>(p[2 * ks + 1][2], p[2 * ks + 1][3]);
    }

    // Writes the warp's rows warpRow .. warpRow+15 of the block (those below rowCount; row r at oh + r * rowStride)
    // and their log-sum-exp.
    template <typename T>
    __device__ __forceinline__ void store(T* oh, int rowStride, float* lseRow, int warpRow, int rowStart, int rowCount,
                                          int lane) const {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float sum = rowSum[h];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const float inv = 1.f / sum;
            const int local = warpRow + (lane >> 2) + 8 * h;
            if (local < rowCount) {
                const int row = rowStart + local;
                T* dst = oh + static_cast<size_t>(row) * rowStride + 2 * (lane & 3);
#pragma unroll
                for (int dt = 0; dt < DT; ++dt)
                    *reinterpret_cast<uint32_t*>(dst + dt * 8) = pack2<T>(acc[dt][2 * h] * inv, acc[dt][2 * h + 1] * inv);
                if (lseRow != nullptr && (lane & 3) == 0)
                    lseRow[row] = (rowMax[h] + log2f(sum)) * 0.69314718055994530942f;
            }
        }
    }
};

// Where a query block's work lives: its rows, its KV list, and the head's slices of q, k, v, o and lse.
struct BlockWork {
    int rowStart, rowCount, rangeBegin, rangeEnd;
    size_t headOffset;
    float* lseRow;
    size_t slice;  // batch * heads + head
};

// Where a plane's rows start and their stride. Planes of [S, D] rows like q (tokenHeads = 0), or token rows: row s of
// batch b at (b * S + s) * rowStride, head h at columns [h * D, (h + 1) * D), with H = tokenHeads heads per batch (the
// launch's plane b * H + h). The output as token rows [B, S, H, D] is the [B * S, H * D] matrix a following product
// reads, so that no pass moves the heads back to rows; V as token rows may be columns of a wider matrix (a fused q, k,
// v projection's), so that no pass moves them to heads.
struct PlaneRows {
    size_t offset;
    int stride;
};

__device__ __forceinline__ PlaneRows token_rows(int tokenHeads, int rowStride, size_t slice, int S, int D) {
    if (tokenHeads == 0) return {slice * S * D, D};
    const size_t b = slice / tokenHeads, h = slice - b * tokenHeads;
    return {b * S * rowStride + h * D, rowStride};
}

__device__ __forceinline__ PlaneRows output_rows(int oTokenHeads, size_t slice, int S, int D) {
    return token_rows(oTokenHeads, oTokenHeads * D, slice, S, D);
}

__device__ __forceinline__ BlockWork block_work_of(const int4* qblocks, const int* listOf, const int* rangeOffsets,
                                                   int slots, int heads, int S, int D, float* lse, int block, int head,
                                                   int batch) {
    const int4 qb = qblocks[block];
    const int list = listOf[head * slots + qb.z];
    const size_t slice = static_cast<size_t>(batch) * heads + head;
    return {qb.x, qb.y, rangeOffsets[list], rangeOffsets[list + 1], slice * S * D,
            lse != nullptr ? lse + slice * S : nullptr, slice};
}

// The block of a launch over grid (query blocks, heads, B).
__device__ __forceinline__ BlockWork block_work(const int4* qblocks, const int* listOf, const int* rangeOffsets,
                                                int slots, int heads, int S, int D, float* lse) {
    return block_work_of(qblocks, listOf, rangeOffsets, slots, heads, S, D, lse, blockIdx.x, blockIdx.y, blockIdx.z);
}

}  // namespace tileattn
