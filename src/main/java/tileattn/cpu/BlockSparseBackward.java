package tileattn.cpu;

import java.util.Arrays;
import java.util.stream.IntStream;
import tileattn.mask.TileLists;

/**
 * The fp32 backward of block-sparse softmax attention from the forward's output and log-sum-exp, in the manner of
 * FlashAttention-2: probabilities are recomputed as P = exp(S·scale − LSE), never stored. With
 * D_i = rowsum(dO_i ⊙ O_i): dP = dO·Vᵀ, dS = P ⊙ (dP − D), dQ = dS·K·scale, dK = dSᵀ·Q·scale, dV = Pᵀ·dO.
 *
 * <p>Two passes keep every output row owned by one task: a pass over query blocks writes dQ, a pass over KV blocks
 * (through the transposed lists) writes dK and dV. Each recomputes the probabilities it needs, trading two extra
 * matrix products per pair of blocks for the absence of locks or per-thread copies of dK and dV.
 *
 * <p>Both passes run on the forward's block kernels of {@link VectorOps}: the rows whose gradient a task owns are
 * held transposed as vector lanes ({@value #ROWS} at a time), and the other side streams past them in runs of up to
 * {@value #STREAM} tokens; adjacent blocks in a list are streamed as one run.
 *
 * <p>Arrays are [slices, sequence, d] row-major; LSE is [slices, sequence].
 */
final class BlockSparseBackward {

    private static final int ROWS = 64;
    private static final int STREAM = 64;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private BlockSparseBackward() {
    }

    /** Per-thread buffers: two transposed inputs, two transposed accumulators, two score blocks, lane vectors. */
    private static final class Scratch {
        float[] inA = new float[0], inB = new float[0], accA = new float[0], accB = new float[0];
        final float[] scores = new float[STREAM * ROWS], dP = new float[STREAM * ROWS];
        final float[] shift = new float[ROWS], rowDot = new float[ROWS], ones = new float[ROWS];

        Scratch() {
            Arrays.fill(ones, 1f);
        }

        Scratch fit(int d) {
            if (inA.length < d * ROWS) {
                inA = new float[d * ROWS];
                inB = new float[d * ROWS];
                accA = new float[d * ROWS];
                accB = new float[d * ROWS];
            }
            return this;
        }
    }

    /** The arrays of one backward call. */
    private record Problem(float[] q, float[] k, float[] v, float[] lse, float[] dOut, float[] rowDot, int d, int seq,
                           BlockPattern pattern, float scale, VectorOps ops) {
    }

    static void run(float[] q, float[] k, float[] v, float[] out, float[] lse, float[] dOut,
                    float[] dq, float[] dk, float[] dv, int slices, int d, BlockPattern pattern, float scale,
                    VectorOps ops) {
        int seq = pattern.sequenceLength();
        int blocks = pattern.blocks();
        float[] rowDot = new float[slices * seq];
        IntStream.range(0, slices).parallel().forEach(s -> {
            for (int row = s * seq; row < (s + 1) * seq; row++) {
                rowDot[row] = ops.dot(dOut, row * d, out, row * d, d);
            }
        });
        Problem p = new Problem(q, k, v, lse, dOut, rowDot, d, seq, pattern, scale, ops);
        IntStream.range(0, slices * blocks).parallel().forEach(task -> queryBlock(p, task / blocks, task % blocks, dq));
        IntStream.range(0, slices * blocks).parallel().forEach(task -> keyBlock(p, task / blocks, task % blocks, dk, dv));
    }

    /** dQ rows of query block b: Σ over the KV blocks it reads of dS·K, times scale. Query rows are the lanes. */
    private static void queryBlock(Problem p, int slice, int b, float[] dq) {
        Scratch sc = SCRATCH.get().fit(p.d);
        VectorOps ops = p.ops;
        int d = p.d, base = slice * p.seq, lanes = ops.lanes();
        int[] starts = p.pattern.starts();
        int[] runs = runs(p.pattern.reads()[slice], b, starts);
        float[] qt = sc.inA, dOt = sc.inB, acc = sc.accA, st = sc.scores, dP = sc.dP;
        for (int r0 = starts[b]; r0 < starts[b + 1]; r0 += ROWS) {
            int rows = Math.min(ROWS, starts[b + 1] - r0), w = roundUp(rows, lanes);
            transpose(p.q, (base + r0) * d, rows, d, w, qt);
            transpose(p.dOut, (base + r0) * d, rows, d, w, dOt);
            for (int i = 0; i < w; i++) {
                sc.shift[i] = i < rows ? p.lse[base + r0 + i] : 0f;
                sc.rowDot[i] = i < rows ? p.rowDot[base + r0 + i] : 0f;
            }
            Arrays.fill(acc, 0, d * w, 0f);
            for (int r = 0; r < runs.length; r += 2) {
                for (int k0 = runs[r]; k0 < runs[r + 1]; k0 += STREAM) {
                    int n = Math.min(STREAM, runs[r + 1] - k0), kOff = (base + k0) * d;
                    ops.scores(p.k, kOff, n, d, qt, 0, w, st);
                    ops.scores(p.v, kOff, n, d, dOt, 0, w, dP);
                    for (int j = 0; j < n; j++) {
                        for (int i = 0; i < w; i++) {
                            st[j * w + i] = st[j * w + i] * p.scale - sc.shift[i];
                        }
                    }
                    ops.exp(st, 0, n * w);
                    for (int j = 0; j < n; j++) {
                        for (int i = 0; i < w; i++) {
                            dP[j * w + i] = st[j * w + i] * (dP[j * w + i] - sc.rowDot[i]);
                        }
                    }
                    ops.accumulate(dP, n, w, p.k, kOff, d, acc, 0, sc.ones);
                }
            }
            untranspose(acc, w, rows, d, p.scale, dq, (base + r0) * d);
        }
    }

    /**
     * dK and dV rows of KV block b: Σ over the query blocks that read it of dSᵀ·Q·scale and Pᵀ·dO. Key rows are the
     * lanes; query rows stream past them.
     */
    private static void keyBlock(Problem p, int slice, int b, float[] dk, float[] dv) {
        Scratch sc = SCRATCH.get().fit(p.d);
        VectorOps ops = p.ops;
        int d = p.d, base = slice * p.seq, lanes = ops.lanes();
        int[] starts = p.pattern.starts();
        int[] runs = runs(p.pattern.readBy()[slice], b, starts);
        float[] kt = sc.inA, vt = sc.inB, accK = sc.accA, accV = sc.accB, st = sc.scores, dP = sc.dP;
        for (int c0 = starts[b]; c0 < starts[b + 1]; c0 += ROWS) {
            int cols = Math.min(ROWS, starts[b + 1] - c0), w = roundUp(cols, lanes);
            transpose(p.k, (base + c0) * d, cols, d, w, kt);
            transpose(p.v, (base + c0) * d, cols, d, w, vt);
            Arrays.fill(accK, 0, d * w, 0f);
            Arrays.fill(accV, 0, d * w, 0f);
            for (int r = 0; r < runs.length; r += 2) {
                for (int i0 = runs[r]; i0 < runs[r + 1]; i0 += STREAM) {
                    int n = Math.min(STREAM, runs[r + 1] - i0), qOff = (base + i0) * d;
                    ops.scores(p.q, qOff, n, d, kt, 0, w, st);
                    ops.scores(p.dOut, qOff, n, d, vt, 0, w, dP);
                    for (int i = 0; i < n; i++) {
                        float shift = p.lse[base + i0 + i];
                        for (int j = 0; j < cols; j++) {
                            st[i * w + j] = st[i * w + j] * p.scale - shift;
                        }
                        // padding lanes get probability 1 against zero keys: finite, and never written back
                        Arrays.fill(st, i * w + cols, (i + 1) * w, 0f);
                    }
                    ops.exp(st, 0, n * w);
                    for (int i = 0; i < n; i++) {
                        float rowDot = p.rowDot[base + i0 + i];
                        for (int j = 0; j < w; j++) {
                            dP[i * w + j] = st[i * w + j] * (dP[i * w + j] - rowDot);
                        }
                    }
                    ops.accumulate(st, n, w, p.dOut, qOff, d, accV, 0, sc.ones);
                    ops.accumulate(dP, n, w, p.q, qOff, d, accK, 0, sc.ones);
                }
            }
            untranspose(accK, w, cols, d, p.scale, dk, (base + c0) * d);
            untranspose(accV, w, cols, d, 1f, dv, (base + c0) * d);
        }
    }

    /** The token ranges [runs[2i], runs[2i+1]) of the blocks listed for block b, adjacent blocks merged. */
    private static int[] runs(TileLists lists, int b, int[] starts) {
        int count = lists.count(b);
        int[] runs = new int[2 * count];
        int r = 0;
        for (int i = 0; i < count; i++) {
            int blk = lists.get(b, i);
            if (r > 0 && runs[r - 1] == starts[blk]) {
                runs[r - 1] = starts[blk + 1];
            } else {
                runs[r++] = starts[blk];
                runs[r++] = starts[blk + 1];
            }
        }
        return Arrays.copyOf(runs, r);
    }

    /** t[dd·w + i] = x[off + i·d + dd] for i &lt; rows; lanes rows..w are zero. */
    private static void transpose(float[] x, int off, int rows, int d, int w, float[] t) {
        for (int i = 0; i < rows; i++) {
            for (int dd = 0; dd < d; dd++) {
                t[dd * w + i] = x[off + i * d + dd];
            }
        }
        if (rows < w) {
            for (int dd = 0; dd < d; dd++) {
                Arrays.fill(t, dd * w + rows, (dd + 1) * w, 0f);
            }
        }
    }

    /** y[off + i·d + dd] = t[dd·w + i] · factor for i &lt; rows. */
    private static void untranspose(float[] t, int w, int rows, int d, float factor, float[] y, int off) {
        for (int i = 0; i < rows; i++) {
            for (int dd = 0; dd < d; dd++) {
                y[off + i * d + dd] = t[dd * w + i] * factor;
            }
        }
    }

    private static int roundUp(int x, int multiple) {
        return (x + multiple - 1) / multiple * multiple;
    }
}
