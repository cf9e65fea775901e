package tileattn.cpu;

import java.util.Comparator;
import java.util.stream.IntStream;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * Literal double-precision forward and backward of dense, STA and VSA attention on raster-order tensors
 * [B, heads, S, d]: every query/key pair is tested against the mask rule itself and no tile structure is
 * exploited, so this is the yardstick the fp32 and GPU backwards are checked against.
 */
public final class ReferenceGradients {

    private ReferenceGradients() {
    }

    /** Gradients shaped like their inputs; {@code dgate} is null unless a VSA gate was given. */
    public record Gradients(DoubleTensor dq, DoubleTensor dk, DoubleTensor dv, DoubleTensor dgate) {
    }

    /** Output and natural log-sum-exp of each row's scaled scores, shaped [B, heads, S]. */
    public record Forward(DoubleTensor out, DoubleTensor lse) {
    }

    /**
     * A VSA forward: {@code out = coarse ⊙ gate + fine}; {@code coarse} is already broadcast to every token of its
     * query tile; {@code fineLse} is the log-sum-exp of each query's selected scores, [B, heads, S]. Selections are
     * indexed {@code batch * heads + head}, one row per query tile.
     */
    public record VsaOutputs(DoubleTensor out, DoubleTensor coarse, DoubleTensor fine, DoubleTensor fineLse,
                             TileLists[] selections) {
    }

    /** Whether query token {@code query} may read key token {@code key} in slice {@code batch * heads + head}. */
    @FunctionalInterface
    private interface PairMask {
        boolean allows(int slice, int query, int key);
    }

    private record Pass(DoubleTensor out, DoubleTensor lse, DoubleTensor dq, DoubleTensor dk, DoubleTensor dv) {
    }

    // ---------------------------------------------------------------- dense

    public static Forward denseForward(DoubleTensor q, DoubleTensor k, DoubleTensor v, double scale) {
        checkQkv(q, k, v);
        Pass p = attention(q, k, v, null, scale, (s, i, j) -> true);
        return new Forward(p.out, p.lse);
    }

    public static Gradients dense(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor dOut, double scale) {
        checkQkv(q, k, v);
        checkLike("dOut", dOut, q);
        Pass p = attention(q, k, v, dOut, scale, (s, i, j) -> true);
        return new Gradients(p.dq, p.dk, p.dv, null);
    }

    // ---------------------------------------------------------------- STA

    /**
     * STA forward with one window per head: video queries read the video keys their head's window allows and
     * every text key; text queries read everything.
     */
    public static Forward staForward(DoubleTensor q, DoubleTensor k, DoubleTensor v, TokenLayout layout,
                                     Window[] windows, double scale) {
        PairMask mask = staMask(q, k, v, layout, windows);
        Pass p = attention(q, k, v, null, scale, mask);
        return new Forward(p.out, p.lse);
    }

    public static Gradients sta(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor dOut, TokenLayout layout,
                                Window[] windows, double scale) {
        PairMask mask = staMask(q, k, v, layout, windows);
        checkLike("dOut", dOut, q);
        Pass p = attention(q, k, v, dOut, scale, mask);
        return new Gradients(p.dq, p.dk, p.dv, null);
    }

    private static PairMask staMask(DoubleTensor q, DoubleTensor k, DoubleTensor v, TokenLayout layout, Window[] windows) {
        checkQkv(q, k, v);
        int heads = q.dim(1);
        if (q.dim(2) != layout.sequenceLength()) {
            throw new IllegalArgumentException("sequence length " + q.dim(2) + " does not match the layout's "
                    + layout.sequenceLength() + " (video " + layout.videoTokens() + " + text " + layout.textLength() + ")");
        }
        if (windows.length != heads) {
            throw new IllegalArgumentException("expected one STA window per head (" + heads + "), got " + windows.length);
        }
        TileGrid grid = layout.grid();
        for (Window w : windows) {
            w.checkFits(grid.tiles());
        }
        int video = grid.videoTokens();
        int[] tileOf = rasterTileOf(grid);
        return (slice, i, j) -> i >= video || j >= video
                || StaMask.allows(grid, windows[slice % heads], tileOf[i], tileOf[j]);
    }

    // ---------------------------------------------------------------- VSA

    /** VSA forward with the top-{@code topK} selection computed from the coarse scores. {@code gate} may be null. */
    public static VsaOutputs vsaForward(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor gate, TileGrid grid,
                                        int topK, double scale) {
        return vsaForward(q, k, v, gate, grid, vsaSelections(q, k, grid, topK, scale), scale);
    }

    /** VSA forward with a given selection (one {@link TileLists} per batch·heads slice). */
    public static VsaOutputs vsaForward(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor gate, TileGrid grid,
                                        TileLists[] selections, double scale) {
        Vsa vsa = new Vsa(q, k, v, gate, grid, selections);
        DoubleTensor pq = vsa.pool(q), pk = vsa.pool(k), pv = vsa.pool(v);
        DoubleTensor coarse = vsa.broadcast(attention(pq, pk, pv, null, scale, (s, i, j) -> true).out);
        Pass fine = attention(q, k, v, null, scale, vsa.fineMask());
        double[] out = new double[q.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = coarse.data()[i] * (gate == null ? 1.0 : gate.data()[i]) + fine.out.data()[i];
        }
        return new VsaOutputs(new DoubleTensor(q.shape(), out), coarse, fine.out, fine.lse, selections);
    }

    /** VSA gradients with the top-{@code topK} selection of the forward held fixed. */
    public static Gradients vsa(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor gate, DoubleTensor dOut,
                                TileGrid grid, int topK, double scale) {
        return vsa(q, k, v, gate, dOut, grid, vsaSelections(q, k, grid, topK, scale), scale);
    }

    /**
     * VSA gradients for a given selection. The coarse branch's pooled gradients are spread equally over the real
     * tokens of each tile (the derivative of a mean); the selection is not differentiated.
     */
    public static Gradients vsa(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor gate, DoubleTensor dOut,
                                TileGrid grid, TileLists[] selections, double scale) {
        Vsa vsa = new Vsa(q, k, v, gate, grid, selections);
        checkLike("dOut", dOut, q);
        DoubleTensor pq = vsa.pool(q), pk = vsa.pool(k), pv = vsa.pool(v);
        Pass coarse = attention(pq, pk, pv, null, scale, (s, i, j) -> true);
        DoubleTensor coarseTokens = vsa.broadcast(coarse.out);

        double[] dCoarse = new double[q.size()];
        double[] dGate = gate == null ? null : new double[q.size()];
        for (int i = 0; i < dCoarse.length; i++) {
            dCoarse[i] = dOut.data()[i] * (gate == null ? 1.0 : gate.data()[i]);
            if (dGate != null) {
                dGate[i] = dOut.data()[i] * coarseTokens.data()[i];
            }
        }
        Pass coarseGrad = attention(pq, pk, pv, vsa.sumOverTiles(new DoubleTensor(q.shape(), dCoarse)), scale,
                (s, i, j) -> true);
        Pass fine = attention(q, k, v, dOut, scale, vsa.fineMask());

        DoubleTensor dq = vsa.addSpread(fine.dq, coarseGrad.dq);
        DoubleTensor dk = vsa.addSpread(fine.dk, coarseGrad.dk);
        DoubleTensor dv = vsa.addSpread(fine.dv, coarseGrad.dv);
        return new Gradients(dq, dk, dv, dGate == null ? null : new DoubleTensor(q.shape(), dGate));
    }

    /**
     * The top-{@code topK} KV tiles of every query tile by coarse score (ties go to the lower tile index), listed
     * ascending; one {@link TileLists} per batch·heads slice.
     */
    public static TileLists[] vsaSelections(DoubleTensor q, DoubleTensor k, TileGrid grid, int topK, double scale) {
        checkLike("k", k, q);
        Vsa vsa = new Vsa(q, k, k, null, grid, null);
        int tiles = grid.tileCount();
        if (topK < 1 || topK > tiles) {
            throw new IllegalArgumentException("top-k must be in [1, " + tiles + "] (the number of KV tiles), got " + topK);
        }
        DoubleTensor pq = vsa.pool(q), pk = vsa.pool(k);
        int d = q.dim(3);
        TileLists[] result = new TileLists[q.dim(0) * q.dim(1)];
        for (int slice = 0; slice < result.length; slice++) {
            int[] offsets = new int[tiles + 1];
            int[] kv = new int[tiles * topK];
            for (int a = 0; a < tiles; a++) {
                double[] score = new double[tiles];
                for (int b = 0; b < tiles; b++) {
                    score[b] = dot(pq.data(), (slice * tiles + a) * d, pk.data(), (slice * tiles + b) * d, d) * scale;
                }
                int[] best = IntStream.range(0, tiles).boxed()
                        .sorted(Comparator.<Integer>comparingDouble(b -> -score[b]).thenComparingInt(b -> b))
                        .limit(topK).mapToInt(Integer::intValue).sorted().toArray();
                System.arraycopy(best, 0, kv, a * topK, topK);
                offsets[a + 1] = (a + 1) * topK;
            }
            result[slice] = new TileLists(offsets, kv);
        }
        return result;
    }

    /** Pooling, broadcasting and the fine mask of one VSA problem in raster order. */
    private static final class Vsa {
        final TileGrid grid;
        final int slices, tokens, d, tiles;
        final int[] tileOf;
        final boolean[][] selected;

        Vsa(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor gate, TileGrid grid, TileLists[] selections) {
            checkQkv(q, k, v);
            if (q.dim(2) != grid.videoTokens()) {
                throw new IllegalArgumentException("VSA has no text tokens: sequence length " + q.dim(2)
                        + " must equal the video's " + grid.videoTokens() + " tokens");
            }
            if (gate != null) {
                checkLike("gate", gate, q);
            }
            this.grid = grid;
            this.slices = q.dim(0) * q.dim(1);
            this.tokens = q.dim(2);
            this.d = q.dim(3);
            this.tiles = grid.tileCount();
            this.tileOf = rasterTileOf(grid);
            this.selected = selections == null ? null : selectedMatrix(selections);
        }

        private boolean[][] selectedMatrix(TileLists[] selections) {
            if (selections.length != slices) {
                throw new IllegalArgumentException("expected " + slices + " selections (batch x heads), got "
                        + selections.length);
            }
            boolean[][] m = new boolean[slices][tiles * tiles];
            for (int s = 0; s < slices; s++) {
                if (selections[s].queryTiles() != tiles) {
                    throw new IllegalArgumentException("selection " + s + " has " + selections[s].queryTiles()
                            + " query tiles, the grid has " + tiles);
                }
                for (int a = 0; a < tiles; a++) {
                    if (selections[s].count(a) < 1) {
                        throw new IllegalArgumentException("selection " + s + " selects no KV tile for query tile " + a);
                    }
                    for (int i = 0; i < selections[s].count(a); i++) {
                        int b = selections[s].get(a, i);
                        if (b < 0 || b >= tiles) {
                            throw new IllegalArgumentException("selection " + s + " names KV tile " + b
                                    + " outside [0, " + tiles + ")");
                        }
                        m[s][a * tiles + b] = true;
                    }
                }
            }
            return m;
        }

        PairMask fineMask() {
            return (s, i, j) -> selected[s][tileOf[i] * tiles + tileOf[j]];
        }

        /** Sum of each tile's tokens: [B, heads, S, d] → [B, heads, tiles, d]. */
        DoubleTensor sumOverTiles(DoubleTensor x) {
            double[] out = new double[slices * tiles * d];
            for (int s = 0; s < slices; s++) {
                for (int i = 0; i < tokens; i++) {
                    int src = (s * tokens + i) * d, dst = (s * tiles + tileOf[i]) * d;
                    for (int c = 0; c < d; c++) {
                        out[dst + c] += x.data()[src + c];
                    }
                }
            }
            return new DoubleTensor(new int[]{x.dim(0), x.dim(1), tiles, d}, out);
        }

        /** Mean over each tile's real tokens. */
        DoubleTensor pool(DoubleTensor x) {
            DoubleTensor sum = sumOverTiles(x);
            for (int s = 0; s < slices; s++) {
                for (int a = 0; a < tiles; a++) {
                    double n = grid.tileTokens(a);
                    for (int c = 0; c < d; c++) {
                        sum.data()[(s * tiles + a) * d + c] /= n;
                    }
                }
            }
            return sum;
        }

        /** Copies each tile's row to every token of the tile: [B, heads, tiles, d] → [B, heads, S, d]. */
        DoubleTensor broadcast(DoubleTensor perTile) {
            double[] out = new double[slices * tokens * d];
            for (int s = 0; s < slices; s++) {
                for (int i = 0; i < tokens; i++) {
                    System.arraycopy(perTile.data(), (s * tiles + tileOf[i]) * d, out, (s * tokens + i) * d, d);
                }
            }
            return new DoubleTensor(new int[]{perTile.dim(0), perTile.dim(1), tokens, d}, out);
        }

        /** {@code tokenGrad + pooledGrad / tileTokens}, the chain rule through a mean. */
        DoubleTensor addSpread(DoubleTensor tokenGrad, DoubleTensor pooledGrad) {
            DoubleTensor spread = broadcast(pooledGrad);
            double[] out = tokenGrad.data().clone();
            for (int s = 0; s < slices; s++) {
                for (int i = 0; i < tokens; i++) {
                    double n = grid.tileTokens(tileOf[i]);
                    int at = (s * tokens + i) * d;
                    for (int c = 0; c < d; c++) {
                        out[at + c] += spread.data()[at + c] / n;
                    }
                }
            }
            return new DoubleTensor(tokenGrad.shape(), out);
        }
    }

    // ---------------------------------------------------------------- the literal masked attention

    /**
     * Softmax attention under a pair mask, and its backward when {@code dOut} is given:
     * dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = dS·K·scale, dK = dSᵀ·Q·scale, dV = Pᵀ·dO.
     */
    private static Pass attention(DoubleTensor q, DoubleTensor k, DoubleTensor v, DoubleTensor dOut, double scale,
                                  PairMask mask) {
        int slices = q.dim(0) * q.dim(1), n = q.dim(2), d = q.dim(3);
        double[] out = new double[q.size()], lse = new double[slices * n];
        double[] dq = new double[q.size()], dk = new double[q.size()], dv = new double[q.size()];
        double[] p = new double[n];
        for (int s = 0; s < slices; s++) {
            int base = s * n * d;
            for (int i = 0; i < n; i++) {
                int qi = base + i * d;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    p[j] = mask.allows(s, i, j) ? dot(q.data(), qi, k.data(), base + j * d, d) * scale
                            : Double.NEGATIVE_INFINITY;
                    max = Math.max(max, p[j]);
                }
                if (max == Double.NEGATIVE_INFINITY) {
                    throw new IllegalStateException("query " + i + " of slice " + s + " may attend to no key");
                }
                double sum = 0;
                for (int j = 0; j < n; j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                lse[s * n + i] = max + Math.log(sum);
                for (int j = 0; j < n; j++) {
                    p[j] /= sum;
                    for (int c = 0; c < d; c++) {
                        out[qi + c] += p[j] * v.data()[base + j * d + c];
                    }
                }
                if (dOut == null) {
                    continue;
                }
                double rowDot = dot(dOut.data(), qi, out, qi, d);
                for (int j = 0; j < n; j++) {
                    if (p[j] == 0) {
                        continue;
                    }
                    int kj = base + j * d;
                    double dS = p[j] * (dot(dOut.data(), qi, v.data(), kj, d) - rowDot);
                    for (int c = 0; c < d; c++) {
                        dq[qi + c] += dS * k.data()[kj + c] * scale;
                        dk[kj + c] += dS * q.data()[qi + c] * scale;
                        dv[kj + c] += p[j] * dOut.data()[qi + c];
                    }
                }
            }
        }
        int[] lseShape = {q.dim(0), q.dim(1), n};
        return new Pass(new DoubleTensor(q.shape(), out), new DoubleTensor(lseShape, lse),
                new DoubleTensor(q.shape(), dq), new DoubleTensor(k.shape(), dk), new DoubleTensor(v.shape(), dv));
    }

    private static double dot(double[] a, int ai, double[] b, int bi, int n) {
        double s = 0;
        for (int c = 0; c < n; c++) {
            s += a[ai + c] * b[bi + c];
        }
        return s;
    }

    /** The tile of every video token in raster order. */
    private static int[] rasterTileOf(TileGrid grid) {
        int hh = grid.video().h(), ww = grid.video().w();
        int[] tileOf = new int[grid.videoTokens()];
        for (int i = 0; i < tileOf.length; i++) {
            tileOf[i] = grid.tileOf(i / (hh * ww), i / ww % hh, i % ww);
        }
        return tileOf;
    }

    private static void checkQkv(DoubleTensor q, DoubleTensor k, DoubleTensor v) {
        if (q.shape().length != 4) {
            throw new IllegalArgumentException("q must be [B, heads, S, d], got " + q.shapeString());
        }
        checkLike("k", k, q);
        checkLike("v", v, q);
    }

    private static void checkLike(String name, DoubleTensor t, DoubleTensor q) {
        if (!t.sameShape(q)) {
            throw new IllegalArgumentException(name + " has shape " + t.shapeString() + " but q has " + q.shapeString());
        }
    }
}
