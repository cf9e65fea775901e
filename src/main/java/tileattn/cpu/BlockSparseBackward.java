package tileattn.cpu;

import java.util.stream.IntStream;

/**
 * The fp32 backward of block-sparse softmax attention from the forward's output and log-sum-exp, in the manner of
 * FlashAttention-2: probabilities are recomputed as P = exp(S·scale − LSE), never stored. With
 * D_i = rowsum(dO_i ⊙ O_i): dP = dO·Vᵀ, dS = P ⊙ (dP − D), dQ = dS·K·scale, dK = dSᵀ·Q·scale, dV = Pᵀ·dO.
 *
 * <p>Two passes keep every output row owned by one task: a pass over query blocks writes dQ, a pass over KV blocks
 * (through the transposed lists) writes dK and dV. Each recomputes the probabilities it needs, trading two extra
 * dot products per pair for the absence of locks or per-thread copies.
 *
 * <p>Arrays are [slices, sequence, d] row-major; LSE is [slices, sequence].
 */
final class BlockSparseBackward {

    private BlockSparseBackward() {
    }

    static void run(float[] q, float[] k, float[] v, float[] out, float[] lse, float[] dOut,
                    float[] dq, float[] dk, float[] dv, int slices, int d, BlockPattern pattern, float scale) {
        int seq = pattern.sequenceLength();
        int blocks = pattern.blocks();
        float[] rowDot = new float[slices * seq];
        IntStream.range(0, slices).parallel().forEach(s -> {
            for (int row = s * seq; row < (s + 1) * seq; row++) {
                rowDot[row] = dot(dOut, row * d, out, row * d, d);
            }
        });
        IntStream.range(0, slices * blocks).parallel().forEach(task -> {
            int s = task / blocks, b = task % blocks;
            queryBlock(q, k, v, lse, dOut, rowDot, dq, s * seq, d, pattern, s, b, scale);
        });
        IntStream.range(0, slices * blocks).parallel().forEach(task -> {
            int s = task / blocks, b = task % blocks;
            keyBlock(q, k, v, lse, dOut, rowDot, dk, dv, s * seq, d, pattern, s, b, scale);
        });
    }

    /** dQ rows of query block b: Σ over the KV blocks it reads of dS·K, times scale. */
    private static void queryBlock(float[] q, float[] k, float[] v, float[] lse, float[] dOut, float[] rowDot,
                                   float[] dq, int base, int d, BlockPattern pattern, int slice, int b, float scale) {
        var reads = pattern.reads()[slice];
        int[] starts = pattern.starts();
        for (int i = starts[b]; i < starts[b + 1]; i++) {
            int row = base + i, qi = row * d;
            for (int n = 0; n < reads.count(b); n++) {
                int kb = reads.get(b, n);
                for (int j = starts[kb]; j < starts[kb + 1]; j++) {
                    int kj = (base + j) * d;
                    float p = (float) Math.exp(dot(q, qi, k, kj, d) * scale - lse[row]);
                    float dS = p * (dot(dOut, qi, v, kj, d) - rowDot[row]);
                    axpy(dS, k, kj, dq, qi, d);
                }
            }
            scaleRow(dq, qi, d, scale);
        }
    }

    /** dK and dV rows of KV block b: Σ over the query blocks that read it of dSᵀ·Q·scale and Pᵀ·dO. */
    private static void keyBlock(float[] q, float[] k, float[] v, float[] lse, float[] dOut, float[] rowDot,
                                 float[] dk, float[] dv, int base, int d, BlockPattern pattern, int slice, int b,
                                 float scale) {
        var readBy = pattern.readBy()[slice];
        int[] starts = pattern.starts();
        for (int j = starts[b]; j < starts[b + 1]; j++) {
            int kj = (base + j) * d;
            for (int n = 0; n < readBy.count(b); n++) {
                int qb = readBy.get(b, n);
                for (int i = starts[qb]; i < starts[qb + 1]; i++) {
                    int row = base + i, qi = row * d;
                    float p = (float) Math.exp(dot(q, qi, k, kj, d) * scale - lse[row]);
                    float dS = p * (dot(dOut, qi, v, kj, d) - rowDot[row]);
                    axpy(p, dOut, qi, dv, kj, d);
                    axpy(dS, q, qi, dk, kj, d);
                }
            }
            scaleRow(dk, kj, d, scale);
        }
    }

    private static float dot(float[] a, int ai, float[] b, int bi, int n) {
        float s = 0;
        for (int c = 0; c < n; c++) {
            s += a[ai + c] * b[bi + c];
        }
        return s;
    }

    private static void axpy(float alpha, float[] x, int xi, float[] y, int yi, int n) {
        for (int c = 0; c < n; c++) {
            y[yi + c] += alpha * x[xi + c];
        }
    }

    private static void scaleRow(float[] y, int yi, int n, float s) {
        for (int c = 0; c < n; c++) {
            y[yi + c] *= s;
        }
    }
}
