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
            Gradients g = CpuAttentionBackward.dense(q, k, v, fwd.out().toFloat(), fwd.lse().toFloat(), dOut, scale);
            String tag = "dense " + java.util.Arrays.toString(shape);
            assertClose(tag + " dq", ref.dq(), g.dq(), null);
            assertClose(tag + " dk", ref.dk(), g.dk(), null);
            assertClose(tag + " dv", ref.dv(), g.dv(), null);
            assertNull(g.dgate());
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
        Gradients g = CpuAttentionBackward.sta(permuteTokens(q, perm), permuteTokens(k, perm), permuteTokens(v, perm),
                permuteTokens(fwd.out().toFloat(), perm), permuteTokens(fwd.lse().toFloat(), perm),
                permuteTokens(dOut, perm), layout, windows, scale);
        String tag = "sta " + layout.grid() + " text " + layout.textLength() + " windows "
                + java.util.Arrays.toString(windows) + " B=" + batch + " d=" + d;
        assertClose(tag + " dq", ref.dq(), g.dq(), perm);
        assertClose(tag + " dk", ref.dk(), g.dk(), perm);
        assertClose(tag + " dv", ref.dv(), g.dv(), perm);
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
        Gradients g = CpuAttentionBackward.vsa(qt, kt, vt, gated ? permuteTokens(gate, perm) : null,
                permuteTokens(dOut, perm), grid, fwd.selections(), pq.toFloat(), pk.toFloat(), pv.toFloat(),
                coarse.out().toFloat(), coarse.lse().toFloat(), permuteTokens(fwd.fine().toFloat(), perm),
                permuteTokens(fwd.fineLse().toFloat(), perm), scale);
        String tag = "vsa " + grid + " k=" + topK + " B=" + batch + " heads=" + heads + " d=" + d + (gated ? " gated" : "");
        assertClose(tag + " dq", ref.dq(), g.dq(), perm);
        assertClose(tag + " dk", ref.dk(), g.dk(), perm);
        assertClose(tag + " dv", ref.dv(), g.dv(), perm);
        if (gated) {
            assertClose(tag + " dgate", ref.dgate(), g.dgate(), perm);
        } else {
            assertNull(g.dgate());
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
        var e = assertThrows(IllegalArgumentException.class, () -> CpuAttentionBackward.vsa(x, x, x, null, x, grid,
                new TileLists[]{outside}, p, p, p, p, plse, x, lse, 1));
        assertTrue(e.getMessage().contains("KV tile 2"), e.getMessage());
        var count = assertThrows(IllegalArgumentException.class, () -> CpuAttentionBackward.vsa(x, x, x, null, x, grid,
                new TileLists[0], p, p, p, p, plse, x, lse, 1));
        assertTrue(count.getMessage().contains("selections"), count.getMessage());
    }
}
