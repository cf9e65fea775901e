package tileattn.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.TileLists;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * The fp32 tile-order backward against the literal double reference on raster-order tensors. Inputs are fresh
 * random fp32 values; the reference sees exactly those values, and its output and log-sum-exp, rounded to fp32,
 * stand in for what an fp32 forward keeps.
 */
class CpuAttentionBackwardTest {

    private static final double TOLERANCE = 1e-5;
    private static final VectorOps[] OPS = {VectorOpsProvider.panamaOrScalar(), new ScalarVectorOps()};

    static FloatTensor random(Random rnd, float spread, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) (spread * rnd.nextGaussian());
        }
        return t;
    }

    /** Moves token r of every slice to position perm[r]; works for [B, heads, S, d] and [B, heads, S]. */
    static FloatTensor permuteTokens(FloatTensor x, int[] perm) {
        int seq = x.dim(2), row = x.rank() == 4 ? x.dim(3) : 1, slices = x.dim(0) * x.dim(1);
        float[] out = new float[x.size()];
        for (int s = 0; s < slices; s++) {
            for (int r = 0; r < seq; r++) {
                System.arraycopy(x.data(), (s * seq + r) * row, out, (s * seq + perm[r]) * row, row);
            }
        }
        return new FloatTensor(x.shape(), out);
    }

    static double relL2(FloatTensor expected, FloatTensor actual) {
        assertArrayEquals(expected.shape(), actual.shape());
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.size(); i++) {
            double e = expected.data()[i], a = actual.data()[i];
            assertTrue(Float.isFinite(actual.data()[i]), "non-finite gradient at " + i);
            diff += (e - a) * (e - a);
            norm += e * e;
        }
        assertTrue(norm > 0, "reference gradient is zero, the comparison would be empty");
        return Math.sqrt(diff / norm);
    }

    private static void assertClose(String what, DoubleTensor reference, FloatTensor actual, int[] perm) {
        FloatTensor expected = perm == null ? reference.toFloat() : permuteTokens(reference.toFloat(), perm);
        double err = relL2(expected, actual);
        assertTrue(err < TOLERANCE, what + ": relative L2 error " + err);
    }

    // ---------------------------------------------------------------- dense

    @Test
    void denseMatchesReference() {
        Random rnd = new Random(41);
        for (int trial = 0; trial < 12; trial++) {
            int batch = 1 + rnd.nextInt(2), heads = 1 + rnd.nextInt(3), seq = 1 + rnd.nextInt(150);
            int d = new int[]{1, 3, 4, 8, 16, 17}[rnd.nextInt(6)];
            int[] shape = {batch, heads, seq, d};
            float scale = (float) (1 / Math.sqrt(d));
            FloatTensor q = random(rnd, 1.5f, shape), k = random(rnd, 1.5f, shape), v = random(rnd, 1, shape);
            FloatTensor dOut = random(rnd, 1, shape);
            DoubleTensor qd = DoubleTensor.of(q), kd = DoubleTensor.of(k), vd = DoubleTensor.of(v);
            var fwd = ReferenceGradients.denseForward(qd, kd, vd, scale);
            var ref = ReferenceGradients.dense(qd, kd, vd, DoubleTensor.of(dOut), scale);
            for (VectorOps ops : OPS) {
                Gradients g = CpuAttentionBackward.dense(q, k, v, fwd.out().toFloat(), fwd.lse().toFloat(), dOut, scale,
                        ops);
                String tag = "dense " + java.util.Arrays.toString(shape) + " " + ops.name();
                assertClose(tag + " dq", ref.dq(), g.dq(), null);
                assertClose(tag + " dk", ref.dk(), g.dk(), null);
                assertClose(tag + " dv", ref.dv(), g.dv(), null);
                assertNull(g.dgate());
            }
        }
    }

    // ---------------------------------------------------------------- STA

    private static int randomWindowExtent(Random rnd, int n) {
        if (rnd.nextInt(4) == 0) {
            return n;
        }
        int k = 1 + 2 * rnd.nextInt((n + 1) / 2);
        return Math.min(k, n % 2 == 1 ? n : n - 1);
    }

    @Test
    void staMatchesReferenceOverShapes() {
        Random rnd = new Random(42);
        int[] textLengths = {0, 1, 5, 70};
        for (int trial = 0; trial < 16; trial++) {
            Shape3 video = new Shape3(1 + rnd.nextInt(4), 1 + rnd.nextInt(6), 1 + rnd.nextInt(7));
            Shape3 tile = new Shape3(1 + rnd.nextInt(2), 1 + rnd.nextInt(3), 1 + rnd.nextInt(3));
            int text = textLengths[trial % textLengths.length];
            TokenLayout layout = TokenLayout.of(video, tile, text);
            Shape3 n = layout.grid().tiles();
            int batch = 1 + rnd.nextInt(2), heads = 1 + rnd.nextInt(3);
            boolean shared = rnd.nextBoolean();
            Window[] windows = new Window[heads];
            for (int h = 0; h < heads; h++) {
                windows[h] = shared && h > 0 ? windows[0] : new Window(randomWindowExtent(rnd, n.t()),
                        randomWindowExtent(rnd, n.h()), randomWindowExtent(rnd, n.w()));
            }
            int d = new int[]{2, 4, 5, 8}[rnd.nextInt(4)];
            checkSta(rnd, layout, windows, batch, heads, d);
        }
    }

    @Test
    void staEdgeWindowsAndLongText() {
        Random rnd = new Random(43);
        // window 1 on a 1-tile axis, clamped windows at both ends, text longer than two chunks
        TokenLayout layout = TokenLayout.of(new Shape3(3, 7, 10), new Shape3(3, 2, 3), 150);
        checkSta(rnd, layout, new Window[]{new Window(1, 1, 1), new Window(1, 3, 3), new Window(1, 4, 1)}, 1, 3, 4);
        // single-token tiles, window covering all but the far edges
        TokenLayout tiny = TokenLayout.of(new Shape3(1, 5, 7), new Shape3(1, 1, 1), 0);
        checkSta(rnd, tiny, new Window[]{new Window(1, 3, 5), new Window(1, 1, 7)}, 2, 2, 3);
    }

    private static void checkSta(Random rnd, TokenLayout layout, Window[] windows, int batch, int heads, int d) {
        int[] shape = {batch, heads, layout.sequenceLength(), d};
        float scale = (float) (1 / Math.sqrt(d));
        FloatTensor q = random(rnd, 1.5f, shape), k = random(rnd, 1.5f, shape), v = random(rnd, 1, shape);
        FloatTensor dOut = random(rnd, 1, shape);
        DoubleTensor qd = DoubleTensor.of(q), kd = DoubleTensor.of(k), vd = DoubleTensor.of(v);
        var fwd = ReferenceGradients.staForward(qd, kd, vd, layout, windows, scale);
        var ref = ReferenceGradients.sta(qd, kd, vd, DoubleTensor.of(dOut), layout, windows, scale);
        int[] perm = layout.rasterToTileOrder();
        for (VectorOps ops : OPS) {
            Gradients g = CpuAttentionBackward.sta(permuteTokens(q, perm), permuteTokens(k, perm),
                    permuteTokens(v, perm), permuteTokens(fwd.out().toFloat(), perm),
                    permuteTokens(fwd.lse().toFloat(), perm), permuteTokens(dOut, perm), layout, windows, scale, ops);
            String tag = "sta " + layout.grid() + " text " + layout.textLength() + " windows "
                    + java.util.Arrays.toString(windows) + " B=" + batch + " d=" + d + " " + ops.name();
            assertClose(tag + " dq", ref.dq(), g.dq(), perm);
            assertClose(tag + " dk", ref.dk(), g.dk(), perm);
            assertClose(tag + " dv", ref.dv(), g.dv(), perm);
        }
    }

    @Test
    void staRejectsBadInput() {
        TokenLayout layout = TokenLayout.of(new Shape3(2, 3, 4), new Shape3(1, 2, 2), 3);
        FloatTensor x = FloatTensor.zeros(1, 2, 27, 4), lse = FloatTensor.zeros(1, 2, 27);
        Window[] ok = {new Window(1, 1, 1), new Window(1, 1, 1)};
        var badLse = assertThrows(IllegalArgumentException.class, () -> CpuAttentionBackward.sta(x, x, x, x,
                FloatTensor.zeros(1, 2, 26), x, layout, ok, 1));
        assertTrue(badLse.getMessage().contains("lse"), badLse.getMessage());
        var badWindows = assertThrows(IllegalArgumentException.class, () -> CpuAttentionBackward.sta(x, x, x, x, lse, x,
                layout, new Window[]{new Window(1, 1, 1), new Window(1, 1, 1), new Window(1, 1, 1)}, 1));
        assertTrue(badWindows.getMessage().contains("per head"), badWindows.getMessage());
        var badLength = assertThrows(IllegalArgumentException.class, () -> CpuAttentionBackward.sta(x, x, x, x, lse, x,
                TokenLayout.of(new Shape3(2, 3, 4), new Shape3(1, 2, 2), 4), ok, 1));
        assertTrue(badLength.getMessage().contains("sequence length"), badLength.getMessage());
        var badDout = assertThrows(IllegalArgumentException.class, () -> CpuAttentionBackward.sta(x, x, x, x, lse,
                FloatTensor.zeros(1, 2, 27, 3), layout, ok, 1));
        assertTrue(badDout.getMessage().contains("dOut"), badDout.getMessage());
    }

    // ---------------------------------------------------------------- VSA

    @Test
    void vsaMatchesReferenceOverShapes() {
        Random rnd = new Random(44);
        for (int trial = 0; trial < 14; trial++) {
            Shape3 video = new Shape3(1 + rnd.nextInt(4), 1 + rnd.nextInt(6), 1 + rnd.nextInt(8));
            Shape3 tile = new Shape3(1 + rnd.nextInt(3), 1 + rnd.nextInt(3), 1 + rnd.nextInt(4));
            TileGrid grid = new TileGrid(video, tile);
            int tiles = grid.tileCount();
            int topK = switch (trial % 3) {
                case 0 -> 1;
                case 1 -> tiles;
                default -> 1 + rnd.nextInt(tiles);
            };
            checkVsa(rnd, grid, topK, 1 + rnd.nextInt(2), 1 + rnd.nextInt(2), new int[]{2, 4, 7}[rnd.nextInt(3)],
                    trial % 2 == 0);
        }
    }

    @Test
    void vsaWithLargePartialTiles() {
        // 4x4x4 tiles over a 5x6x7 video: full 64-token tiles next to tiles of 1..48 real tokens
        checkVsa(new Random(45), new TileGrid(new Shape3(5, 6, 7), new Shape3(4, 4, 4)), 3, 1, 2, 8, true);
    }

    private static void checkVsa(Random rnd, TileGrid grid, int topK, int batch, int heads, int d, boolean gated) {
        int[] shape = {batch, heads, grid.videoTokens(), d};
        float scale = (float) (1 / Math.sqrt(d));
        FloatTensor q = random(rnd, 1.5f, shape), k = random(rnd, 1.5f, shape), v = random(rnd, 1, shape);
        FloatTensor gate = gated ? random(rnd, 1, shape) : null, dOut = random(rnd, 1, shape);
        DoubleTensor qd = DoubleTensor.of(q), kd = DoubleTensor.of(k), vd = DoubleTensor.of(v);
        DoubleTensor gd = gated ? DoubleTensor.of(gate) : null;
        var fwd = ReferenceGradients.vsaForward(qd, kd, vd, gd, grid, topK, scale);
        var ref = ReferenceGradients.vsa(qd, kd, vd, gd, DoubleTensor.of(dOut), grid, fwd.selections(), scale);

        int[] perm = grid.rasterToTileOrder();
        FloatTensor qt = permuteTokens(q, perm), kt = permuteTokens(k, perm), vt = permuteTokens(v, perm);
        DoubleTensor pq = pool(qt, grid), pk = pool(kt, grid), pv = pool(vt, grid);
        var coarse = ReferenceGradients.denseForward(pq, pk, pv, scale);
        VsaForward state = new VsaForward(permuteTokens(fwd.out().toFloat(), perm),
                permuteTokens(fwd.coarse().toFloat(), perm), permuteTokens(fwd.fine().toFloat(), perm),
                fwd.selections(), pq.toFloat(), pk.toFloat(), pv.toFloat(), coarse.out().toFloat(),
                coarse.lse().toFloat(), permuteTokens(fwd.fineLse().toFloat(), perm));
        for (VectorOps ops : OPS) {
            Gradients g = CpuAttentionBackward.vsa(state, qt, kt, vt, gated ? permuteTokens(gate, perm) : null,
                    permuteTokens(dOut, perm), grid, scale, ops);
            String tag = "vsa " + grid + " k=" + topK + " B=" + batch + " heads=" + heads + " d=" + d
                    + (gated ? " gated " : " ") + ops.name();
            assertClose(tag + " dq", ref.dq(), g.dq(), perm);
            assertClose(tag + " dk", ref.dk(), g.dk(), perm);
            assertClose(tag + " dv", ref.dv(), g.dv(), perm);
            if (gated) {
                assertClose(tag + " dgate", ref.dgate(), g.dgate(), perm);
            } else {
                assertNull(g.dgate());
            }
        }
    }

    /** Mean over each tile's real tokens of a tile-order tensor, in double. */
    private static DoubleTensor pool(FloatTensor x, TileGrid grid) {
        int slices = x.dim(0) * x.dim(1), seq = x.dim(2), d = x.dim(3), tiles = grid.tileCount();
        DoubleTensor out = DoubleTensor.zeros(x.dim(0), x.dim(1), tiles, d);
        for (int s = 0; s < slices; s++) {
            for (int t = 0; t < tiles; t++) {
                int n = grid.tileTokens(t);
                for (int i = grid.tileStart(t); i < grid.tileStart(t) + n; i++) {
                    for (int c = 0; c < d; c++) {
                        out.data()[(s * tiles + t) * d + c] += x.data()[(s * seq + i) * d + c] / (double) n;
                    }
                }
            }
        }
        return out;
    }

    @Test
    void vsaRejectsBadSelections() {
        TileGrid grid = new TileGrid(new Shape3(2, 2, 2), new Shape3(1, 2, 2));
        FloatTensor x = FloatTensor.zeros(1, 1, 8, 2), lse = FloatTensor.zeros(1, 1, 8);
        FloatTensor p = FloatTensor.zeros(1, 1, 2, 2), plse = FloatTensor.zeros(1, 1, 2);
        TileLists outside = new TileLists(new int[]{0, 1, 2}, new int[]{0, 2});
        VsaForward bad = new VsaForward(x, x, x, new TileLists[]{outside}, p, p, p, p, plse, lse);
        var e = assertThrows(IllegalArgumentException.class,
                () -> CpuAttentionBackward.vsa(bad, x, x, x, null, x, grid, 1));
        assertTrue(e.getMessage().contains("KV tile 2"), e.getMessage());
        VsaForward none = new VsaForward(x, x, x, new TileLists[0], p, p, p, p, plse, lse);
        var count = assertThrows(IllegalArgumentException.class,
                () -> CpuAttentionBackward.vsa(none, x, x, x, null, x, grid, 1));
        assertTrue(count.getMessage().contains("selections"), count.getMessage());
        VsaForward wrongPool = new VsaForward(x, x, x, new TileLists[]{outside}, x, x, x, x, lse, lse);
        var pooled = assertThrows(IllegalArgumentException.class,
                () -> CpuAttentionBackward.vsa(wrongPool, x, x, x, null, x, grid, 1));
        assertTrue(pooled.getMessage().contains("pooled"), pooled.getMessage());
    }

    // ---------------------------------------------------------------- the fp32 forward feeding the backward

    @Test
    void backwardFromTheCpuForwardMatchesReference() {
        Random rnd = new Random(46);
        double tolerance = TOLERANCE;
        // dense with a sequence that is not a multiple of the blocks
        int[] shape = {2, 2, 77, 8};
        float scale = CpuAttention.defaultScale(8);
        FloatTensor q = random(rnd, 1.5f, shape), k = random(rnd, 1.5f, shape), v = random(rnd, 1, shape);
        FloatTensor dOut = random(rnd, 1, shape);
        AttentionResult dense = CpuAttention.denseForward(q, k, v, scale);
        Gradients g = CpuAttentionBackward.dense(q, k, v, dense.out(), dense.lse(), dOut, scale);
        var ref = ReferenceGradients.dense(DoubleTensor.of(q), DoubleTensor.of(k), DoubleTensor.of(v),
                DoubleTensor.of(dOut), scale);
        Tensors.assertClose(g.dq(), ref.dq().toFloat(), tolerance, "dense dq");
        Tensors.assertClose(g.dk(), ref.dk().toFloat(), tolerance, "dense dk");
        Tensors.assertClose(g.dv(), ref.dv().toFloat(), tolerance, "dense dv");

        // STA with text and per-head windows: raster in, tile order through forward and backward, raster out
        TokenLayout layout = TokenLayout.of(new Shape3(3, 5, 7), new Shape3(2, 2, 3), 11);
        Window[] windows = {new Window(1, 3, 3), new Window(2, 1, 3)};
        int[] staShape = {1, 2, layout.sequenceLength(), 8};
        q = random(rnd, 1.5f, staShape);
        k = random(rnd, 1.5f, staShape);
        v = random(rnd, 1, staShape);
        dOut = random(rnd, 1, staShape);
        FloatTensor qt = TokenPermutation.toTileOrder(q, layout), kt = TokenPermutation.toTileOrder(k, layout);
        FloatTensor vt = TokenPermutation.toTileOrder(v, layout);
        AttentionResult sta = CpuAttention.staForward(qt, kt, vt, layout, windows, scale);
        g = CpuAttentionBackward.sta(qt, kt, vt, sta.out(), sta.lse(), TokenPermutation.toTileOrder(dOut, layout),
                layout, windows, scale);
        ref = ReferenceGradients.sta(DoubleTensor.of(q), DoubleTensor.of(k), DoubleTensor.of(v), DoubleTensor.of(dOut),
                layout, windows, scale);
        Tensors.assertClose(TokenPermutation.toRaster(g.dq(), layout), ref.dq().toFloat(), tolerance, "sta dq");
        Tensors.assertClose(TokenPermutation.toRaster(g.dk(), layout), ref.dk().toFloat(), tolerance, "sta dk");
        Tensors.assertClose(TokenPermutation.toRaster(g.dv(), layout), ref.dv().toFloat(), tolerance, "sta dv");

        // VSA with a gate; the reference differentiates the selection the fp32 forward made
        TileGrid grid = new TileGrid(new Shape3(5, 6, 7), new Shape3(2, 4, 4));
        int[] vsaShape = {2, 1, grid.videoTokens(), 8};
        q = random(rnd, 1.5f, vsaShape);
        k = random(rnd, 1.5f, vsaShape);
        v = random(rnd, 1, vsaShape);
        dOut = random(rnd, 1, vsaShape);
        FloatTensor gate = random(rnd, 1, vsaShape);
        qt = TokenPermutation.toTileOrder(q, grid);
        kt = TokenPermutation.toTileOrder(k, grid);
        vt = TokenPermutation.toTileOrder(v, grid);
        FloatTensor gt = TokenPermutation.toTileOrder(gate, grid);
        VsaForward state = CpuAttention.vsa(qt, kt, vt, gt, grid, 3, scale);
        g = CpuAttentionBackward.vsa(state, qt, kt, vt, gt, TokenPermutation.toTileOrder(dOut, grid), grid, scale);
        ref = ReferenceGradients.vsa(DoubleTensor.of(q), DoubleTensor.of(k), DoubleTensor.of(v), DoubleTensor.of(gate),
                DoubleTensor.of(dOut), grid, state.selection(), scale);
        Tensors.assertClose(TokenPermutation.toRaster(g.dq(), grid), ref.dq().toFloat(), tolerance, "vsa dq");
        Tensors.assertClose(TokenPermutation.toRaster(g.dk(), grid), ref.dk().toFloat(), tolerance, "vsa dk");
        Tensors.assertClose(TokenPermutation.toRaster(g.dv(), grid), ref.dv().toFloat(), tolerance, "vsa dv");
        Tensors.assertClose(TokenPermutation.toRaster(g.dgate(), grid), ref.dgate().toFloat(), tolerance, "vsa dgate");
    }
}
