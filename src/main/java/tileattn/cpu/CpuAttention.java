package tileattn.cpu;

import java.util.Arrays;
import java.util.stream.IntStream;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Dense, STA and VSA attention on the CPU in fp32, multi-threaded, computing only the pairs each mask allows.
 * All tensors are [B, heads, S, d] in tile order (see {@link TokenPermutation}). NaN or infinite inputs are not
 * rejected here; they propagate into the outputs of the rows they reach.
 */
public final class CpuAttention {

    private CpuAttention() {
    }

    /** The default softmax scale, 1/√d. */
    public static float defaultScale(int headDim) {
        return (float) (1.0 / Math.sqrt(headDim));
    }

    public static FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return denseForward(q, k, v, scale).out();
    }

    /** Dense attention with the per-row log-sum-exp kept for a backward pass. */
    public static AttentionResult denseForward(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return denseForward(q, k, v, scale, VectorOpsProvider.get());
    }

    static AttentionResult denseForward(FloatTensor q, FloatTensor k, FloatTensor v, float scale, VectorOps ops) {
        AttentionShapes.checkQkv(q, k, v);
        AttentionShapes.checkScale(scale);
        return BlockSparseAttention.dense(q, k, v, scale, ops);
    }

    /**
     * Sliding Tile Attention: each video query reads the video tiles inside its head's window and all text tokens;
     * text queries read everything.
     *
     * @param windowsPerHead one window per head (length = heads)
     */
    public static FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
            float scale) {
        return staForward(q, k, v, layout, windowsPerHead, scale).out();
    }

    /** STA with the per-row log-sum-exp kept for a backward pass. */
    public static AttentionResult staForward(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
            Window[] windowsPerHead, float scale) {
        return staForward(q, k, v, layout, windowsPerHead, scale, VectorOpsProvider.get());
    }

    static AttentionResult staForward(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
            Window[] windowsPerHead, float scale, VectorOps ops) {
        AttentionShapes.checkQkv(q, k, v);
        AttentionShapes.checkScale(scale);
        int batch = q.dim(0), heads = q.dim(1), s = q.dim(2);
        TileGrid grid = layout.grid();
        if (s != layout.sequenceLength()) {
            throw new IllegalArgumentException("S=" + s + " but the layout has T*H*W+L=" + grid.video().t() + "*"
                    + grid.video().h() + "*" + grid.video().w() + "+" + layout.textLength() + "=" + layout.sequenceLength());
        }
        if (windowsPerHead == null || windowsPerHead.length != heads) {
            throw new IllegalArgumentException("expected one STA window per head (" + heads + "), got "
                    + (windowsPerHead == null ? "none" : windowsPerHead.length));
        }
        TileLists[] perHead = new TileLists[heads];
        for (int h = 0; h < heads; h++) {
            if (windowsPerHead[h] == null) {
                throw new IllegalArgumentException("the STA window of head " + h + " is missing");
            }
            perHead[h] = StaMask.tileLists(grid, windowsPerHead[h]);
        }
        TileLists[] perBatchHead = new TileLists[batch * heads];
        for (int bh = 0; bh < perBatchHead.length; bh++) {
            perBatchHead[bh] = perHead[bh % heads];
        }
        return BlockSparseAttention.sparse(q, k, v, scale, grid.tileStarts(), perBatchHead, layout.textLength(), ops);
    }

    /**
     * Video Sparse Attention over the video tokens of grid (no text), pooling over grid's tile.
     *
     * @param gateOrNull multiplies the coarse output elementwise; shaped like q, or null for a gate of 1
     * @param topK KV tiles kept per query tile, 1..tiles
     */
    public static VsaForward vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gateOrNull, TileGrid grid, int topK,
            float scale) {
        return vsa(q, k, v, gateOrNull, grid, topK, scale, VectorOpsProvider.get());
    }

    static VsaForward vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gateOrNull, TileGrid grid, int topK,
            float scale, VectorOps ops) {
        AttentionShapes.checkQkv(q, k, v);
        AttentionShapes.checkScale(scale);
        int batch = q.dim(0), heads = q.dim(1), s = q.dim(2), d = q.dim(3);
        int tiles = grid.tileCount();
        if (s != grid.videoTokens()) {
            throw new IllegalArgumentException("S=" + s + " but the video has T*H*W=" + grid.video().t() + "*"
                    + grid.video().h() + "*" + grid.video().w() + "=" + grid.videoTokens() + " tokens (VSA takes no text)");
        }
        if (topK < 1 || topK > tiles) {
            throw new IllegalArgumentException("topK=" + topK + " out of range 1.." + tiles + " (tiles of " + grid + ")");
        }
        if (gateOrNull != null && !gateOrNull.sameShape(q)) {
            throw new IllegalArgumentException("q has shape " + q.shapeString() + " but gate has " + gateOrNull.shapeString());
        }
        int[] starts = grid.tileStarts();
        int planes = batch * heads;

        FloatTensor pooledQ = pool(q, starts), pooledK = pool(k, starts), pooledV = pool(v, starts);
        FloatTensor coarseTiles = FloatTensor.zeros(batch, heads, tiles, d);
        FloatTensor coarseLse = FloatTensor.zeros(batch, heads, tiles);
        int[][] selected = new int[planes][tiles * topK];
        IntStream.range(0, planes * tiles).parallel().forEach(row -> coarseRow(row, tiles, d, scale, topK, pooledQ,
                pooledK, pooledV, coarseTiles, coarseLse, selected, ops));

        TileLists[] selection = new TileLists[planes];
        int[] offsets = new int[tiles + 1];
        Arrays.setAll(offsets, i -> i * topK);
        for (int p = 0; p < planes; p++) {
            selection[p] = new TileLists(offsets.clone(), selected[p]);
        }
        AttentionResult fine = BlockSparseAttention.sparse(q, k, v, scale, starts, selection, 0, ops);

        FloatTensor coarse = FloatTensor.zeros(q.shape());
        FloatTensor out = FloatTensor.zeros(q.shape());
        float[] ct = coarseTiles.data(), c = coarse.data(), o = out.data(), f = fine.out().data();
        float[] g = gateOrNull == null ? null : gateOrNull.data();
        IntStream.range(0, planes).parallel().forEach(p -> {
            for (int tile = 0; tile < tiles; tile++) {
                int src = (p * tiles + tile) * d;
                for (int tok = starts[tile]; tok < starts[tile + 1]; tok++) {
                    int dst = (p * s + tok) * d;
                    System.arraycopy(ct, src, c, dst, d);
                    for (int dd = 0; dd < d; dd++) {
                        o[dst + dd] = (g == null ? c[dst + dd] : c[dst + dd] * g[dst + dd]) + f[dst + dd];
                    }
                }
            }
        });
        return new VsaForward(out, coarse, fine.out(), selection, pooledQ, pooledK, pooledV, coarseTiles, coarseLse,
                fine.lse());
    }

    /** Mean over each tile's real tokens: [B, heads, S, d] → [B, heads, tiles, d]. */
    private static FloatTensor pool(FloatTensor x, int[] starts) {
        int planes = x.dim(0) * x.dim(1), s = x.dim(2), d = x.dim(3), tiles = starts.length - 1;
        FloatTensor pooled = FloatTensor.zeros(x.dim(0), x.dim(1), tiles, d);
        float[] src = x.data(), dst = pooled.data();
        IntStream.range(0, planes).parallel().forEach(p -> {
            double[] sum = new double[d];
            for (int tile = 0; tile < tiles; tile++) {
                Arrays.fill(sum, 0.0);
                for (int tok = starts[tile]; tok < starts[tile + 1]; tok++) {
                    int row = (p * s + tok) * d;
                    for (int dd = 0; dd < d; dd++) {
                        sum[dd] += src[row + dd];
                    }
                }
                int count = starts[tile + 1] - starts[tile];
                int out = (p * tiles + tile) * d;
                for (int dd = 0; dd < d; dd++) {
                    dst[out + dd] = (float) (sum[dd] / count);
                }
            }
        });
        return pooled;
    }

    /** Coarse attention of one query tile (row = plane·tiles + tile) over all tiles, and its top-k selection. */
    private static void coarseRow(int row, int tiles, int d, float scale, int topK, FloatTensor pooledQ, FloatTensor pooledK,
            FloatTensor pooledV, FloatTensor coarseTiles, FloatTensor coarseLse, int[][] selected, VectorOps ops) {
        int plane = row / tiles, qTile = row % tiles;
        float[] pq = pooledQ.data(), pk = pooledK.data(), pv = pooledV.data(), out = coarseTiles.data();
        float[] scores = new float[tiles];
        float max = Float.NEGATIVE_INFINITY;
        for (int kTile = 0; kTile < tiles; kTile++) {
            scores[kTile] = ops.dot(pq, row * d, pk, (plane * tiles + kTile) * d, d) * scale;
            max = Math.max(max, scores[kTile]);
        }
        TopKTiles.select(scores, tiles, topK, new long[tiles], selected[plane], qTile * topK);
        float sum = 0;
        for (int kTile = 0; kTile < tiles; kTile++) {
            float p = (float) Math.exp(scores[kTile] - max);
            sum += p;
            ops.axpy(p, pv, (plane * tiles + kTile) * d, out, row * d, d);
        }
        ops.scale(out, row * d, d, 1f / sum);
        coarseLse.data()[row] = max + (float) Math.log(sum);
    }
}
