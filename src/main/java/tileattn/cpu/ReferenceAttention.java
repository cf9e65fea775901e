package tileattn.cpu;

import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Literal per-token attention in double precision: the source of truth the fast kernels are tested against.
 * Inputs and outputs are [B, heads, S, d] in RASTER order (video tokens in T, H, W order, then text), so
 * comparing with the tile-order kernels also checks the permutations. Every value is computed in double and
 * rounded to fp32 once, when the result tensor is built. Cost is O(B·heads·S²·d); meant for small shapes.
 */
public final class ReferenceAttention {

    private ReferenceAttention() {
    }

    /** Whether query token i may attend to key token j in a given head. */
    @FunctionalInterface
    private interface PairRule {
        boolean allows(int head, int i, int j);
    }

    public static FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, double scale) {
        AttentionShapes.checkQkv(q, k, v);
        return toTensor(q, attend(q, k, v, scale, (h, i, j) -> true));
    }

    /** STA deciding every (query, key) pair from the two tokens' tile coordinates with {@link Window#allows}. */
    public static FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
            double scale) {
        AttentionShapes.checkQkv(q, k, v);
        TileGrid grid = layout.grid();
        if (q.dim(2) != layout.sequenceLength()) {
            throw new IllegalArgumentException("S=" + q.dim(2) + " but the layout has T*H*W+L=" + layout.sequenceLength());
        }
        if (windowsPerHead.length != q.dim(1)) {
            throw new IllegalArgumentException("expected " + q.dim(1) + " windows, got " + windowsPerHead.length);
        }
        for (Window window : windowsPerHead) {
            window.checkFits(grid.tiles());
        }
        int video = grid.videoTokens();
        int[][] tileCoords = rasterTileCoords(grid);
        Shape3 n = grid.tiles();
        PairRule rule = (h, i, j) -> {
            if (i >= video || j >= video) {
                return true;
            }
            Window window = windowsPerHead[h];
            for (int a = 0; a < 3; a++) {
                if (!Window.allows(tileCoords[i][a], tileCoords[j][a], window.get(a), n.get(a))) {
                    return false;
                }
            }
            return true;
        };
        return toTensor(q, attend(q, k, v, scale, rule));
    }

    /** VSA over a raster-order video: pooling, coarse softmax, top-k (ties to the lower tile), fine attention. */
    public static ReferenceVsa vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gateOrNull, TileGrid grid,
            int topK, double scale) {
        AttentionShapes.checkQkv(q, k, v);
        int batch = q.dim(0), heads = q.dim(1), s = q.dim(2), d = q.dim(3);
        int tiles = grid.tileCount();
        if (s != grid.videoTokens()) {
            throw new IllegalArgumentException("S=" + s + " but the video has " + grid.videoTokens() + " tokens");
        }
        if (topK < 1 || topK > tiles) {
            throw new IllegalArgumentException("topK=" + topK + " out of range 1.." + tiles);
        }
        if (gateOrNull != null && !gateOrNull.sameShape(q)) {
            throw new IllegalArgumentException("q has shape " + q.shapeString() + " but gate has " + gateOrNull.shapeString());
        }
        int[] tileOf = new int[s];
        Shape3 video = grid.video();
        for (int r = 0; r < s; r++) {
            tileOf[r] = grid.tileOf(r / (video.h() * video.w()), r / video.w() % video.h(), r % video.w());
        }
        int planes = batch * heads;
        double[] coarseTokens = new double[q.size()];
        int[][] selectedTiles = new int[planes * tiles][];
        double[][] coarseScores = new double[planes][];
        boolean[][] keep = new boolean[planes * tiles][tiles];
        for (int p = 0; p < planes; p++) {
            double[][] pq = poolPlane(q, p, tileOf, tiles), pk = poolPlane(k, p, tileOf, tiles), pv = poolPlane(v, p, tileOf, tiles);
            double[] scores = new double[tiles * tiles];
            double[][] coarseTile = new double[tiles][d];
            for (int a = 0; a < tiles; a++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int b = 0; b < tiles; b++) {
                    double dot = 0;
                    for (int dd = 0; dd < d; dd++) {
                        dot += pq[a][dd] * pk[b][dd];
                    }
                    scores[a * tiles + b] = dot * scale;
                    max = Math.max(max, dot * scale);
                }
                double sum = 0;
                for (int b = 0; b < tiles; b++) {
                    double e = Math.exp(scores[a * tiles + b] - max);
                    sum += e;
                    for (int dd = 0; dd < d; dd++) {
                        coarseTile[a][dd] += e * pv[b][dd];
                    }
                }
                for (int dd = 0; dd < d; dd++) {
                    coarseTile[a][dd] /= sum;
                }
                int[] chosen = topKLowerIndexFirst(scores, a * tiles, tiles, topK);
                selectedTiles[p * tiles + a] = chosen;
                for (int t : chosen) {
                    keep[p * tiles + a][t] = true;
                }
            }
            coarseScores[p] = scores;
            for (int r = 0; r < s; r++) {
                System.arraycopy(coarseTile[tileOf[r]], 0, coarseTokens, (p * s + r) * d, d);
            }
        }
        double[] fine = attendPerPlane(q, k, v, scale, (p, i, j) -> keep[p * tiles + tileOf[i]][tileOf[j]]);
        double[] out = new double[fine.length];
        float[] gate = gateOrNull == null ? null : gateOrNull.data();
        for (int i = 0; i < out.length; i++) {
            out[i] = coarseTokens[i] * (gate == null ? 1.0 : gate[i]) + fine[i];
        }
        return new ReferenceVsa(toTensor(q, out), toTensor(q, coarseTokens), toTensor(q, fine), selectedTiles, coarseScores);
    }

    /** The k largest of scores[off..off+n), repeatedly taking the maximum; a tie keeps the lower index. Ascending. */
    private static int[] topKLowerIndexFirst(double[] scores, int off, int n, int k) {
        boolean[] taken = new boolean[n];
        for (int r = 0; r < k; r++) {
            int best = -1;
            for (int t = 0; t < n; t++) {
                if (!taken[t] && (best < 0 || scores[off + t] > scores[off + best])) {
                    best = t;
                }
            }
            taken[best] = true;
        }
        int[] chosen = new int[k];
        for (int t = 0, c = 0; t < n; t++) {
            if (taken[t]) {
                chosen[c++] = t;
            }
        }
        return chosen;
    }

    /** Mean of x over the tokens of each tile, for one (batch, head) plane. */
    private static double[][] poolPlane(FloatTensor x, int plane, int[] tileOf, int tiles) {
        int s = x.dim(2), d = x.dim(3);
        double[][] sum = new double[tiles][d];
        int[] count = new int[tiles];
        float[] data = x.data();
        for (int r = 0; r < s; r++) {
            count[tileOf[r]]++;
            for (int dd = 0; dd < d; dd++) {
                sum[tileOf[r]][dd] += data[(plane * s + r) * d + dd];
            }
        }
        for (int t = 0; t < tiles; t++) {
            for (int dd = 0; dd < d; dd++) {
                sum[t][dd] /= count[t];
            }
        }
        return sum;
    }

    /** Softmax attention of every query over the keys rule allows, per head. */
    private static double[] attend(FloatTensor q, FloatTensor k, FloatTensor v, double scale, PairRule rule) {
        int heads = q.dim(1);
        return attendPerPlane(q, k, v, scale, (p, i, j) -> rule.allows(p % heads, i, j));
    }

    /** Like attend, with the rule given the plane index batch·heads + head. */
    private static double[] attendPerPlane(FloatTensor q, FloatTensor k, FloatTensor v, double scale, PairRule planeRule) {
        int planes = q.dim(0) * q.dim(1), s = q.dim(2), d = q.dim(3);
        float[] qd = q.data(), kd = k.data(), vd = v.data();
        double[] out = new double[qd.length];
        double[] scores = new double[s];
        for (int p = 0; p < planes; p++) {
            int base = p * s * d;
            for (int i = 0; i < s; i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < s; j++) {
                    if (!planeRule.allows(p, i, j)) {
                        scores[j] = Double.NaN;
                        continue;
                    }
                    double dot = 0;
                    for (int dd = 0; dd < d; dd++) {
                        dot += (double) qd[base + i * d + dd] * kd[base + j * d + dd];
                    }
                    scores[j] = dot * scale;
                    max = Math.max(max, scores[j]);
                }
                double sum = 0;
                int o = base + i * d;
                for (int j = 0; j < s; j++) {
                    if (!planeRule.allows(p, i, j)) {
                        continue;
                    }
                    double e = Math.exp(scores[j] - max);
                    sum += e;
                    for (int dd = 0; dd < d; dd++) {
                        out[o + dd] += e * vd[base + j * d + dd];
                    }
                }
                for (int dd = 0; dd < d; dd++) {
                    out[o + dd] = sum == 0 ? 0 : out[o + dd] / sum;
                }
            }
        }
        return out;
    }

    /** Raster token → its tile's (i_t, i_h, i_w). */
    private static int[][] rasterTileCoords(TileGrid grid) {
        Shape3 video = grid.video(), tile = grid.tile();
        int[][] coords = new int[grid.videoTokens()][];
        for (int r = 0; r < coords.length; r++) {
            int t = r / (video.h() * video.w()), h = r / video.w() % video.h(), w = r % video.w();
            coords[r] = new int[]{t / tile.t(), h / tile.h(), w / tile.w()};
        }
        return coords;
    }

    private static FloatTensor toTensor(FloatTensor like, double[] values) {
        float[] data = new float[values.length];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) values[i];
        }
        return new FloatTensor(like.shape(), data);
    }
}
