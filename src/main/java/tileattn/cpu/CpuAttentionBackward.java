package tileattn.cpu;

import java.util.Arrays;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.TileLists;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * fp32 backward of dense, STA and VSA attention on tile-order tensors [B, heads, S, d], from what the forward kept:
 * its output and per-row log-sum-exp (natural log of Σ exp(q·k·scale), [B, heads, S]). Tiles outside an STA window
 * or a VSA selection are skipped exactly as the forward skips them.
 */
public final class CpuAttentionBackward {

    private CpuAttentionBackward() {
    }

    /** Dense attention over the whole sequence (token order is irrelevant to dense attention). */
    public static Gradients dense(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor out, FloatTensor lse,
                                  FloatTensor dOut, float scale) {
        return dense(q, k, v, out, lse, dOut, scale, VectorOpsProvider.get());
    }

    static Gradients dense(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor out, FloatTensor lse,
                           FloatTensor dOut, float scale, VectorOps ops) {
        checkAttention(q, k, v, out, lse, dOut);
        int slices = q.dim(0) * q.dim(1);
        return blockSparse(q, k, v, out, lse, dOut, BlockPattern.dense(q.dim(2), slices), scale, ops);
    }

    /**
     * STA over a layout in tile order (video tiles, then text) with one window per head: video queries read their
     * head's window of tiles and all text, text queries read everything.
     */
    public static Gradients sta(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor out, FloatTensor lse,
                                FloatTensor dOut, TokenLayout layout, Window[] windows, float scale) {
        return sta(q, k, v, out, lse, dOut, layout, windows, scale, VectorOpsProvider.get());
    }

    static Gradients sta(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor out, FloatTensor lse,
                         FloatTensor dOut, TokenLayout layout, Window[] windows, float scale, VectorOps ops) {
        checkAttention(q, k, v, out, lse, dOut);
        int heads = q.dim(1);
        if (q.dim(2) != layout.sequenceLength()) {
            throw new IllegalArgumentException("sequence length " + q.dim(2) + " does not match the layout's "
                    + layout.sequenceLength() + " (video " + layout.videoTokens() + " + text " + layout.textLength() + ")");
        }
        if (windows.length != heads) {
            throw new IllegalArgumentException("expected one STA window per head (" + heads + "), got " + windows.length);
        }
        for (int h = 0; h < heads; h++) {
            if (windows[h] == null) {
                throw new IllegalArgumentException("the STA window of head " + h + " is missing");
            }
        }
        return blockSparse(q, k, v, out, lse, dOut, BlockPattern.sta(layout, windows, q.dim(0)), scale, ops);
    }

    /**
     * VSA backward from the state of {@link CpuAttention#vsa}, all in tile order. {@code out = coarse ⊙ gate + fine};
     * the fine branch is block-sparse attention over the forward's selection (held fixed), the coarse branch is dense
     * attention between pooled tiles whose gradient reaches every token of a tile through the mean.
     *
     * @param gate the forward's gate, or null for a gate of 1 (then {@code dgate} is null)
     */
    public static Gradients vsa(VsaForward state, FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate,
                                FloatTensor dOut, TileGrid grid, float scale) {
        return vsa(state, q, k, v, gate, dOut, grid, scale, VectorOpsProvider.get());
    }

    static Gradients vsa(VsaForward state, FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate,
                         FloatTensor dOut, TileGrid grid, float scale, VectorOps ops) {
        checkAttention(q, k, v, state.fine(), state.fineLse(), dOut);
        int batch = q.dim(0), heads = q.dim(1), seq = q.dim(2), d = q.dim(3), slices = batch * heads;
        int tiles = grid.tileCount();
        if (seq != grid.videoTokens()) {
            throw new IllegalArgumentException("VSA has no text tokens: sequence length " + seq
                    + " must equal the video's " + grid.videoTokens() + " tokens");
        }
        if (gate != null) {
            checkShape("gate", gate, q.shape());
        }
        FloatTensor coarse = state.coarseTiles();
        checkShape("pooled q", state.pooledQ(), new int[]{batch, heads, tiles, d});
        checkAttention(state.pooledQ(), state.pooledK(), state.pooledV(), coarse, state.coarseLse(), coarse);
        TileLists[] selections = state.selection();
        checkSelections(selections, slices, tiles);

        int[] starts = grid.tileStarts();
        float[] g = gate == null ? null : gate.data();
        float[] dOutData = dOut.data(), coarseData = coarse.data();
        float[] dGate = gate == null ? null : new float[q.size()];
        float[] dCoarse = new float[slices * tiles * d];
        for (int s = 0; s < slices; s++) {
            for (int t = 0; t < tiles; t++) {
                int c0 = (s * tiles + t) * d;
                for (int i = starts[t]; i < starts[t + 1]; i++) {
                    int at = (s * seq + i) * d;
                    for (int c = 0; c < d; c++) {
                        dCoarse[c0 + c] += g == null ? dOutData[at + c] : dOutData[at + c] * g[at + c];
                        if (dGate != null) {
                            dGate[at + c] = dOutData[at + c] * coarseData[c0 + c];
                        }
                    }
                }
            }
        }
        Gradients pooled = blockSparse(state.pooledQ(), state.pooledK(), state.pooledV(), coarse, state.coarseLse(),
                new FloatTensor(coarse.shape(), dCoarse), BlockPattern.dense(tiles, slices), scale, ops);
        Gradients tokens = blockSparse(q, k, v, state.fine(), state.fineLse(), dOut,
                BlockPattern.withTranspose(starts, selections), scale, ops);
        for (FloatTensor[] pair : new FloatTensor[][]{{tokens.dq(), pooled.dq()}, {tokens.dk(), pooled.dk()},
                {tokens.dv(), pooled.dv()}}) {
            spreadOverTiles(pair[1].data(), pair[0].data(), starts, slices, seq, d);
        }
        return new Gradients(tokens.dq(), tokens.dk(), tokens.dv(),
                dGate == null ? null : new FloatTensor(q.shape(), dGate));
    }

    /** Adds each tile's pooled gradient divided by its real token count to every token of the tile. */
    private static void spreadOverTiles(float[] pooled, float[] tokens, int[] starts, int slices, int seq, int d) {
        int tiles = starts.length - 1;
        for (int s = 0; s < slices; s++) {
            for (int t = 0; t < tiles; t++) {
                float inv = 1f / (starts[t + 1] - starts[t]);
                int p0 = (s * tiles + t) * d;
                for (int i = starts[t]; i < starts[t + 1]; i++) {
                    int at = (s * seq + i) * d;
                    for (int c = 0; c < d; c++) {
                        tokens[at + c] += pooled[p0 + c] * inv;
                    }
                }
            }
        }
    }

    private static Gradients blockSparse(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor out,
                                         FloatTensor lse, FloatTensor dOut, BlockPattern pattern, float scale,
                                         VectorOps ops) {
        AttentionShapes.checkScale(scale);
        float[] dq = new float[q.size()], dk = new float[q.size()], dv = new float[q.size()];
        BlockSparseBackward.run(q.data(), k.data(), v.data(), out.data(), lse.data(), dOut.data(), dq, dk, dv,
                q.dim(0) * q.dim(1), q.dim(3), pattern, scale, ops);
        int[] shape = q.shape();
        return new Gradients(new FloatTensor(shape, dq), new FloatTensor(shape, dk), new FloatTensor(shape, dv), null);
    }

    private static void checkAttention(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor out, FloatTensor lse,
                                       FloatTensor dOut) {
        AttentionShapes.checkQkv(q, k, v);
        int[] shape = q.shape();
        checkShape("out", out, shape);
        checkShape("dOut", dOut, shape);
        checkShape("lse", lse, new int[]{shape[0], shape[1], shape[2]});
    }

    private static void checkShape(String name, FloatTensor t, int[] expected) {
        if (t == null) {
            throw new IllegalArgumentException(name + " is required");
        }
        if (!Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(name + " must have shape " + Arrays.toString(expected) + ", got "
                    + t.shapeString());
        }
    }

    private static void checkSelections(TileLists[] selections, int slices, int tiles) {
        if (selections.length != slices) {
            throw new IllegalArgumentException("expected " + slices + " selections (batch x heads), got "
                    + selections.length);
        }
        for (int s = 0; s < slices; s++) {
            TileLists l = selections[s];
            if (l.queryTiles() != tiles) {
                throw new IllegalArgumentException("selection " + s + " has " + l.queryTiles() + " query tiles, the grid has "
                        + tiles);
            }
            for (int kv : l.kvTiles()) {
                if (kv < 0 || kv >= tiles) {
                    throw new IllegalArgumentException("selection " + s + " names KV tile " + kv + " outside [0, " + tiles + ")");
                }
            }
        }
    }
}
