package tileattn.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * Central finite differences in double against the literal reference gradients. The loss is ⟨out, W⟩ for a fixed
 * random W, whose gradient is the backward with dOut = W.
 */
class ReferenceGradientsTest {

    private static final double STEP = 1e-5;
    private static final double TOLERANCE = 1e-6;
    private static final int COORDINATES = 12;

    static DoubleTensor random(Random rnd, double spread, int... shape) {
        DoubleTensor t = DoubleTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = spread * rnd.nextGaussian();
        }
        return t;
    }

    private static double inner(DoubleTensor a, DoubleTensor b) {
        double s = 0;
        for (int i = 0; i < a.size(); i++) {
            s += a.data()[i] * b.data()[i];
        }
        return s;
    }

    private static double rms(DoubleTensor t) {
        return Math.sqrt(inner(t, t) / t.size());
    }

    /**
     * Compares the analytic gradient of {@code loss} at {@code x} with central differences at random coordinates.
     * {@code selection} names the discrete choice made at a point (null: none); a coordinate whose ±step changes it is
     * replaced by another, since the reference differentiates with the choice held fixed.
     */
    private static void checkAgainstFiniteDifferences(String what, DoubleTensor x, DoubleTensor analytic,
                                                      Function<DoubleTensor, Double> loss,
                                                      Function<DoubleTensor, String> selection, Random rnd) {
        double typical = rms(analytic);
        assertTrue(typical > 1e-4, what + ": gradient is suspiciously small (" + typical + "), the check would be weak");
        String chosen = selection == null ? null : selection.apply(x);
        int checked = 0;
        for (int attempt = 0; attempt < COORDINATES * 20 && checked < COORDINATES; attempt++) {
            int i = rnd.nextInt(x.size());
            double saved = x.data()[i];
            x.data()[i] = saved + STEP;
            double up = loss.apply(x);
            String selUp = selection == null ? null : selection.apply(x);
            x.data()[i] = saved - STEP;
            double down = loss.apply(x);
            String selDown = selection == null ? null : selection.apply(x);
            x.data()[i] = saved;
            if (selection != null && !(chosen.equals(selUp) && chosen.equals(selDown))) {
                continue;
            }
            double numeric = (up - down) / (2 * STEP);
            double exact = analytic.data()[i];
            assertEquals(exact, numeric, TOLERANCE * (Math.abs(exact) + typical),
                    what + " at flat index " + i + " of " + x.shapeString());
            checked++;
        }
        assertEquals(COORDINATES, checked, what + ": too few coordinates with a stable top-k selection");
    }

    // ---------------------------------------------------------------- dense

    @Test
    void denseMatchesFiniteDifferences() {
        Random rnd = new Random(101);
        int[][] shapes = {{1, 1, 7, 4}, {2, 2, 23, 5}, {1, 3, 60, 8}};
        for (int[] shape : shapes) {
            double scale = 1 / Math.sqrt(shape[3]);
            DoubleTensor q = random(rnd, 1.5, shape), k = random(rnd, 1.5, shape), v = random(rnd, 1, shape);
            DoubleTensor w = random(rnd, 1, shape);
            var g = ReferenceGradients.dense(q, k, v, w, scale);
            assertNull(g.dgate());
            String tag = "dense " + Arrays.toString(shape);
            checkAgainstFiniteDifferences(tag + " dq", q, g.dq(),
                    x -> inner(ReferenceGradients.denseForward(x, k, v, scale).out(), w), null, rnd);
            checkAgainstFiniteDifferences(tag + " dk", k, g.dk(),
                    x -> inner(ReferenceGradients.denseForward(q, x, v, scale).out(), w), null, rnd);
            checkAgainstFiniteDifferences(tag + " dv", v, g.dv(),
                    x -> inner(ReferenceGradients.denseForward(q, k, x, scale).out(), w), null, rnd);
        }
    }

    @Test
    void denseLogSumExpIsTheRowNormaliser() {
        Random rnd = new Random(5);
        DoubleTensor q = random(rnd, 1, 1, 2, 9, 4), k = random(rnd, 1, 1, 2, 9, 4), v = random(rnd, 1, 1, 2, 9, 4);
        var f = ReferenceGradients.denseForward(q, k, v, 0.7);
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < 9; i++) {
                double sum = 0;
                for (int j = 0; j < 9; j++) {
                    double dot = 0;
                    for (int c = 0; c < 4; c++) {
                        dot += q.data()[(s * 9 + i) * 4 + c] * k.data()[(s * 9 + j) * 4 + c];
                    }
                    sum += Math.exp(0.7 * dot);
                }
                assertEquals(Math.log(sum), f.lse().data()[s * 9 + i], 1e-12);
            }
        }
    }

    // ---------------------------------------------------------------- STA

    private record StaCase(Shape3 video, Shape3 tile, int text, Window[] windows, int batch, int d) {
    }

    @Test
    void staMatchesFiniteDifferences() {
        Random rnd = new Random(202);
        StaCase[] cases = {
                // partial tiles on every axis, no text, one window for all heads
                new StaCase(new Shape3(3, 4, 5), new Shape3(2, 3, 2), 0, new Window[]{new Window(1, 1, 3)}, 1, 4),
                // text longer than a tile, per-head windows including a whole-dimension one
                new StaCase(new Shape3(2, 3, 7), new Shape3(1, 2, 3), 9,
                        new Window[]{new Window(1, 1, 1), new Window(2, 2, 3)}, 2, 6),
                // one text token, edge windows clamped at both ends
                new StaCase(new Shape3(5, 2, 5), new Shape3(1, 1, 1), 1,
                        new Window[]{new Window(3, 1, 3), new Window(5, 2, 1), new Window(1, 1, 5)}, 1, 5),
        };
        for (StaCase c : cases) {
            TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
            int[] shape = {c.batch, c.windows.length, layout.sequenceLength(), c.d};
            double scale = 1 / Math.sqrt(c.d);
            DoubleTensor q = random(rnd, 1.5, shape), k = random(rnd, 1.5, shape), v = random(rnd, 1, shape);
            DoubleTensor w = random(rnd, 1, shape);
            var g = ReferenceGradients.sta(q, k, v, w, layout, c.windows, scale);
            String tag = "sta " + c;
            checkAgainstFiniteDifferences(tag + " dq", q, g.dq(),
                    x -> inner(ReferenceGradients.staForward(x, k, v, layout, c.windows, scale).out(), w), null, rnd);
            checkAgainstFiniteDifferences(tag + " dk", k, g.dk(),
                    x -> inner(ReferenceGradients.staForward(q, x, v, layout, c.windows, scale).out(), w), null, rnd);
            checkAgainstFiniteDifferences(tag + " dv", v, g.dv(),
                    x -> inner(ReferenceGradients.staForward(q, k, x, layout, c.windows, scale).out(), w), null, rnd);
        }
    }

    @Test
    void staWithWholeGridWindowIsDense() {
        Random rnd = new Random(3);
        TokenLayout layout = TokenLayout.of(new Shape3(2, 3, 4), new Shape3(2, 2, 3), 4);
        int[] shape = {1, 2, layout.sequenceLength(), 4};
        DoubleTensor q = random(rnd, 1, shape), k = random(rnd, 1, shape), v = random(rnd, 1, shape),
                w = random(rnd, 1, shape);
        Window full = Window.full(layout.grid().tiles());
        var sta = ReferenceGradients.sta(q, k, v, w, layout, new Window[]{full, full}, 0.5);
        var dense = ReferenceGradients.dense(q, k, v, w, 0.5);
        assertArrayEquals(dense.dq().data(), sta.dq().data(), 1e-12);
        assertArrayEquals(dense.dk().data(), sta.dk().data(), 1e-12);
        assertArrayEquals(dense.dv().data(), sta.dv().data(), 1e-12);
    }

    @Test
    void staMaskIsLiteral() {
        // 1x1x3 tiles of one token, window 1 along W: token 0 reads only key 0 and the text key 3.
        TokenLayout layout = TokenLayout.of(new Shape3(1, 1, 3), new Shape3(1, 1, 1), 1);
        DoubleTensor q = DoubleTensor.zeros(1, 1, 4, 1), k = DoubleTensor.zeros(1, 1, 4, 1);
        DoubleTensor v = new DoubleTensor(new int[]{1, 1, 4, 1}, new double[]{1, 10, 100, 1000});
        var f = ReferenceGradients.staForward(q, k, v, layout, new Window[]{new Window(1, 1, 1)}, 1);
        assertArrayEquals(new double[]{(1 + 1000) / 2.0, (10 + 1000) / 2.0, (100 + 1000) / 2.0, 1111 / 4.0},
                f.out().data(), 1e-9);
    }

    @Test
    void staRejectsBadInput() {
        TokenLayout layout = TokenLayout.of(new Shape3(2, 3, 4), new Shape3(1, 1, 1), 2);
        DoubleTensor q = DoubleTensor.zeros(1, 2, 26, 4);
        var wrongWindows = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.staForward(q, q, q,
                layout, new Window[]{new Window(1, 1, 1), new Window(1, 1, 1), new Window(1, 1, 1)}, 1));
        assertTrue(wrongWindows.getMessage().contains("per head"), wrongWindows.getMessage());
        var wrongLength = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.staForward(
                DoubleTensor.zeros(1, 2, 25, 4), DoubleTensor.zeros(1, 2, 25, 4), DoubleTensor.zeros(1, 2, 25, 4),
                layout, new Window[]{new Window(1, 1, 1)}, 1));
        assertTrue(wrongLength.getMessage().contains("sequence length"), wrongLength.getMessage());
        var even = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.staForward(q, q, q, layout,
                new Window[]{new Window(1, 1, 1), new Window(1, 2, 1)}, 1));
        assertTrue(even.getMessage().contains("even"), even.getMessage());
        var mismatch = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.sta(q, q, q,
                DoubleTensor.zeros(1, 2, 26, 5), layout, new Window[]{new Window(1, 1, 1), new Window(1, 1, 1)}, 1));
        assertTrue(mismatch.getMessage().contains("dOut"), mismatch.getMessage());
    }

    // ---------------------------------------------------------------- VSA

    private static String selectionKey(TileLists[] lists) {
        StringBuilder sb = new StringBuilder();
        for (TileLists l : lists) {
            sb.append(Arrays.toString(l.kvTiles())).append(';');
        }
        return sb.toString();
    }

    @Test
    void vsaMatchesFiniteDifferencesForEveryTopK() {
        Random rnd = new Random(303);
        // 3x4x5 video in 2x3x2 tiles: a 2x2x3 grid of 12 tiles, most of them partial (sizes 1 to 12 tokens)
        TileGrid grid = new TileGrid(new Shape3(3, 4, 5), new Shape3(2, 3, 2));
        int tiles = grid.tileCount();
        int d = 4;
        double scale = 1 / Math.sqrt(d);
        for (int topK : new int[]{1, 2, 5, tiles}) {
            for (boolean gated : new boolean[]{false, true}) {
                int[] shape = {1, 2, grid.videoTokens(), d};
                DoubleTensor q = random(rnd, 2, shape), k = random(rnd, 2, shape), v = random(rnd, 1, shape);
                DoubleTensor gate = gated ? random(rnd, 1, shape) : null;
                DoubleTensor w = random(rnd, 1, shape);
                var g = ReferenceGradients.vsa(q, k, v, gate, w, grid, topK, scale);
                assertEquals(gated, g.dgate() != null);
                String tag = "vsa k=" + topK + (gated ? " gated" : "");
                checkAgainstFiniteDifferences(tag + " dq", q, g.dq(),
                        x -> inner(ReferenceGradients.vsaForward(x, k, v, gate, grid, topK, scale).out(), w),
                        x -> selectionKey(ReferenceGradients.vsaSelections(x, k, grid, topK, scale)), rnd);
                checkAgainstFiniteDifferences(tag + " dk", k, g.dk(),
                        x -> inner(ReferenceGradients.vsaForward(q, x, v, gate, grid, topK, scale).out(), w),
                        x -> selectionKey(ReferenceGradients.vsaSelections(q, x, grid, topK, scale)), rnd);
                checkAgainstFiniteDifferences(tag + " dv", v, g.dv(),
                        x -> inner(ReferenceGradients.vsaForward(q, k, x, gate, grid, topK, scale).out(), w), null, rnd);
                if (gated) {
                    checkAgainstFiniteDifferences(tag + " dgate", gate, g.dgate(),
                            x -> inner(ReferenceGradients.vsaForward(q, k, v, x, grid, topK, scale).out(), w), null, rnd);
                }
            }
        }
    }

    @Test
    void vsaSelectionIsTopKWithTiesToTheLowerTile() {
        // 1x1x4 video, tiles of one token, d=1: coarse scores are q*k; keys 3, 5, 5, 1 and q=1 → order 1, 2, 0, 3
        TileGrid grid = new TileGrid(new Shape3(1, 1, 4), new Shape3(1, 1, 1));
        DoubleTensor q = new DoubleTensor(new int[]{1, 1, 4, 1}, new double[]{1, 1, 1, 1});
        DoubleTensor k = new DoubleTensor(new int[]{1, 1, 4, 1}, new double[]{3, 5, 5, 1});
        assertArrayEquals(new int[]{1}, ReferenceGradients.vsaSelections(q, k, grid, 1, 1)[0].of(0));
        assertArrayEquals(new int[]{1, 2}, ReferenceGradients.vsaSelections(q, k, grid, 2, 1)[0].of(2));
        assertArrayEquals(new int[]{0, 1, 2}, ReferenceGradients.vsaSelections(q, k, grid, 3, 1)[0].of(3));
        assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.vsaSelections(q, k, grid, 5, 1));
        assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.vsaSelections(q, k, grid, 0, 1));
    }

    @Test
    void vsaPoolsOverRealTokensOnly() {
        // 1x1x3 video in tiles of 2: tile 0 = tokens {0, 1}, tile 1 = token {2}; one key tile each
        TileGrid grid = new TileGrid(new Shape3(1, 1, 3), new Shape3(1, 1, 2));
        DoubleTensor q = DoubleTensor.zeros(1, 1, 3, 1), k = DoubleTensor.zeros(1, 1, 3, 1);
        DoubleTensor v = new DoubleTensor(new int[]{1, 1, 3, 1}, new double[]{2, 4, 9});
        var f = ReferenceGradients.vsaForward(q, k, v, null, grid, 1, 1);
        // equal scores: coarse = mean of pooled v = (3 + 9) / 2; top-1 tie goes to tile 0, fine = mean of {2, 4}
        assertArrayEquals(new double[]{6, 6, 6}, f.coarse().data(), 1e-12);
        assertArrayEquals(new double[]{3, 3, 3}, f.fine().data(), 1e-12);
        assertArrayEquals(new double[]{9, 9, 9}, f.out().data(), 1e-12);
    }

    @Test
    void vsaWithEveryTileSelectedHasDenseFineBranch() {
        Random rnd = new Random(9);
        TileGrid grid = new TileGrid(new Shape3(2, 3, 3), new Shape3(2, 2, 2));
        int[] shape = {2, 1, grid.videoTokens(), 4};
        DoubleTensor q = random(rnd, 1, shape), k = random(rnd, 1, shape), v = random(rnd, 1, shape);
        var f = ReferenceGradients.vsaForward(q, k, v, null, grid, grid.tileCount(), 0.5);
        assertArrayEquals(ReferenceGradients.denseForward(q, k, v, 0.5).out().data(), f.fine().data(), 1e-12);
    }

    @Test
    void vsaRejectsBadInput() {
        TileGrid grid = new TileGrid(new Shape3(2, 3, 3), new Shape3(2, 2, 2));
        DoubleTensor q = DoubleTensor.zeros(1, 1, 18, 4);
        var text = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.vsaForward(
                DoubleTensor.zeros(1, 1, 20, 4), DoubleTensor.zeros(1, 1, 20, 4), DoubleTensor.zeros(1, 1, 20, 4),
                null, grid, 1, 1));
        assertTrue(text.getMessage().contains("no text"), text.getMessage());
        var gate = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.vsaForward(q, q, q,
                DoubleTensor.zeros(1, 1, 18, 3), grid, 1, 1));
        assertTrue(gate.getMessage().contains("gate"), gate.getMessage());
        var slices = assertThrows(IllegalArgumentException.class, () -> ReferenceGradients.vsaForward(q, q, q, null,
                grid, new TileLists[0], 1));
        assertTrue(slices.getMessage().contains("selections"), slices.getMessage());
    }

    // ---------------------------------------------------------------- agreement with the forward reference

    @Test
    void forwardsAgreeWithReferenceAttention() {
        Random rnd = new Random(404);
        TokenLayout layout = TokenLayout.of(new Shape3(3, 4, 5), new Shape3(2, 3, 2), 6);
        Window[] windows = {new Window(1, 1, 3), new Window(2, 2, 1)};
        int[] shape = {2, 2, layout.sequenceLength(), 5};
        var q = CpuAttentionBackwardTest.random(rnd, 1.5f, shape);
        var k = CpuAttentionBackwardTest.random(rnd, 1.5f, shape);
        var v = CpuAttentionBackwardTest.random(rnd, 1, shape);
        DoubleTensor qd = DoubleTensor.of(q), kd = DoubleTensor.of(k), vd = DoubleTensor.of(v);
        assertArrayEquals(ReferenceAttention.dense(q, k, v, 0.4).data(),
                ReferenceGradients.denseForward(qd, kd, vd, 0.4).out().toFloat().data(), 1e-6f);
        assertArrayEquals(ReferenceAttention.sta(q, k, v, layout, windows, 0.4).data(),
                ReferenceGradients.staForward(qd, kd, vd, layout, windows, 0.4).out().toFloat().data(), 1e-6f);

        TileGrid grid = layout.grid();
        int[] vsaShape = {2, 2, grid.videoTokens(), 5};
        q = CpuAttentionBackwardTest.random(rnd, 1.5f, vsaShape);
        k = CpuAttentionBackwardTest.random(rnd, 1.5f, vsaShape);
        v = CpuAttentionBackwardTest.random(rnd, 1, vsaShape);
        var gate = CpuAttentionBackwardTest.random(rnd, 1, vsaShape);
        ReferenceVsa expected = ReferenceAttention.vsa(q, k, v, gate, grid, 4, 0.4);
        var actual = ReferenceGradients.vsaForward(DoubleTensor.of(q), DoubleTensor.of(k), DoubleTensor.of(v),
                DoubleTensor.of(gate), grid, 4, 0.4);
        assertArrayEquals(expected.out().data(), actual.out().toFloat().data(), 1e-6f);
        assertArrayEquals(expected.coarse().data(), actual.coarse().toFloat().data(), 1e-6f);
        int tiles = grid.tileCount();
        for (int slice = 0; slice < 4; slice++) {
            for (int t = 0; t < tiles; t++) {
                assertArrayEquals(expected.selectedTiles()[slice * tiles + t], actual.selections()[slice].of(t));
            }
        }
    }
}
