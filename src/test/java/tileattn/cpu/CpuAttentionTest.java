package tileattn.cpu;

import static org.junit.jupiter.api.Assertions.*;
import static tileattn.cpu.Tensors.assertClose;
import static tileattn.cpu.Tensors.gaussian;
import static tileattn.cpu.Tensors.relativeL2;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** fp32 CPU attention against the double-precision raster-order reference on fresh random inputs. */
class CpuAttentionTest {

    private static final double TOLERANCE = 1e-5;
    private static final VectorOps[] OPS = {VectorOpsProvider.panamaOrScalar(), new ScalarVectorOps()};

    // ---------------------------------------------------------------- dense

    @Test
    void denseMatchesReference() {
        Random rnd = new Random(101);
        int[][] shapes = {{1, 1, 1, 8}, {2, 3, 7, 16}, {1, 2, 65, 64}, {2, 1, 130, 8}, {1, 2, 300, 7}, {2, 2, 97, 5}};
        for (int[] shape : shapes) {
            FloatTensor q = gaussian(rnd, shape), k = gaussian(rnd, shape), v = gaussian(rnd, shape);
            float scale = CpuAttention.defaultScale(shape[3]);
            FloatTensor expected = ReferenceAttention.dense(q, k, v, scale);
            for (VectorOps ops : OPS) {
                AttentionResult r = CpuAttention.denseForward(q, k, v, scale, ops);
                assertClose(r.out(), expected, TOLERANCE, "dense " + Arrays.toString(shape) + " " + ops.name());
                assertLseMatches(q, k, r.lse(), scale, "dense " + Arrays.toString(shape));
            }
        }
    }

    // ---------------------------------------------------------------- STA

    private record StaCase(Shape3 video, Shape3 tile, int text, int batch, int d, Window... windows) {
        @Override
        public String toString() {
            return "video " + video + " tile " + tile + " L=" + text + " B=" + batch + " d=" + d + " windows "
                    + Arrays.toString(windows);
        }
    }

    @Test
    void staMatchesReferenceOnChosenShapes() {
        List<StaCase> cases = List.of(
                // grid 2x3x4, windows of one tile, odd in the middle, and the whole grid
                new StaCase(new Shape3(3, 5, 7), new Shape3(2, 2, 2), 0, 2, 16,
                        new Window(1, 1, 1), new Window(1, 3, 3), new Window(2, 3, 4)),
                // one token per tile; K = N along H only; one text token
                new StaCase(new Shape3(3, 5, 7), new Shape3(1, 1, 1), 1, 2, 8, new Window(3, 3, 3), new Window(1, 5, 1)),
                // an image cut into partial 4x4x4 tiles (grid 1x3x3), text longer than a tile
                new StaCase(new Shape3(1, 9, 11), new Shape3(4, 4, 4), 70, 2, 64,
                        new Window(1, 1, 1), new Window(1, 3, 1), new Window(1, 1, 3)),
                new StaCase(new Shape3(1, 9, 11), new Shape3(2, 3, 4), 5, 1, 16, new Window(1, 3, 3)),
                // the 5x6x10 grid of published strategies, whole-dimension windows mixed with odd ones
                new StaCase(new Shape3(5, 6, 10), new Shape3(1, 1, 1), 0, 2, 8,
                        new Window(5, 3, 3), new Window(3, 6, 1), new Window(1, 1, 10)),
                new StaCase(new Shape3(5, 6, 10), new Shape3(2, 3, 4), 9, 2, 16,
                        new Window(1, 1, 1), new Window(3, 1, 3), new Window(3, 2, 3)),
                // query tiles of 320 tokens (split into several work items) and a partial tile of 80
                new StaCase(new Shape3(5, 8, 10), new Shape3(4, 8, 10), 3, 1, 8, new Window(1, 1, 1), new Window(2, 1, 1)));
        for (StaCase c : cases) {
            checkSta(new Random(c.hashCode()), c);
        }
    }

    @Test
    void staMatchesReferenceOnRandomShapes() {
        Random rnd = new Random(2024);
        Shape3[] tiles = {new Shape3(1, 1, 1), new Shape3(2, 2, 2), new Shape3(2, 3, 4), new Shape3(4, 4, 4)};
        int[] dims = {8, 16, 64, 7};
        for (int trial = 0; trial < 40; trial++) {
            Shape3 video = new Shape3(1 + rnd.nextInt(6), 1 + rnd.nextInt(7), 1 + rnd.nextInt(8));
            Shape3 tile = rnd.nextInt(5) == 0
                    ? new Shape3(1 + rnd.nextInt(3), 1 + rnd.nextInt(3), 1 + rnd.nextInt(3))
                    : tiles[rnd.nextInt(tiles.length)];
            TileGrid grid = new TileGrid(video, tile);
            int heads = 1 + rnd.nextInt(3);
            Window[] windows = new Window[heads];
            for (int h = 0; h < heads; h++) {
                windows[h] = randomWindow(rnd, grid.tiles());
            }
            int[] texts = {0, 1, tile.volume() + 3};
            checkSta(rnd, new StaCase(video, tile, texts[rnd.nextInt(3)], 1 + rnd.nextInt(2), dims[rnd.nextInt(dims.length)],
                    windows));
        }
    }

    private static Window randomWindow(Random rnd, Shape3 n) {
        int[] k = new int[3];
        for (int a = 0; a < 3; a++) {
            int extent = n.get(a);
            if (rnd.nextInt(4) == 0) {
                k[a] = extent;
            } else {
                int largestOdd = extent % 2 == 1 ? extent : extent - 1;
                k[a] = Math.min(1 + 2 * rnd.nextInt((extent + 1) / 2), largestOdd);
            }
        }
        return new Window(k[0], k[1], k[2]);
    }

    private static void checkSta(Random rnd, StaCase c) {
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        int[] shape = {c.batch, c.windows.length, layout.sequenceLength(), c.d};
        FloatTensor q = gaussian(rnd, shape), k = gaussian(rnd, shape), v = gaussian(rnd, shape);
        float scale = CpuAttention.defaultScale(c.d);
        FloatTensor expected = ReferenceAttention.sta(q, k, v, layout, c.windows, scale);
        FloatTensor qt = TokenPermutation.toTileOrder(q, layout), kt = TokenPermutation.toTileOrder(k, layout),
                vt = TokenPermutation.toTileOrder(v, layout);
        for (VectorOps ops : OPS) {
            AttentionResult r = CpuAttention.staForward(qt, kt, vt, layout, c.windows, scale, ops);
            assertClose(TokenPermutation.toRaster(r.out(), layout), expected, TOLERANCE, "STA " + c + " " + ops.name());
        }
    }

    @Test
    void staWithWholeGridWindowsEqualsDense() {
        Random rnd = new Random(77);
        TokenLayout layout = TokenLayout.of(new Shape3(3, 5, 7), new Shape3(2, 2, 2), 4);
        Shape3 n = layout.grid().tiles();
        int[] shape = {2, 2, layout.sequenceLength(), 16};
        FloatTensor q = gaussian(rnd, shape), k = gaussian(rnd, shape), v = gaussian(rnd, shape);
        float scale = 0.3f;
        FloatTensor sta = CpuAttention.sta(q, k, v, layout, new Window[]{Window.full(n), Window.full(n)}, scale);
        assertTrue(relativeL2(sta, CpuAttention.dense(q, k, v, scale)) < 1e-6);
        FloatTensor denseRaster = ReferenceAttention.dense(TokenPermutation.toRaster(q, layout),
                TokenPermutation.toRaster(k, layout), TokenPermutation.toRaster(v, layout), scale);
        assertClose(TokenPermutation.toRaster(sta, layout), denseRaster, TOLERANCE, "full-window STA vs dense reference");
    }

    @Test
    void staNeedsTheTileOrder() {
        Random rnd = new Random(78);
        TokenLayout layout = TokenLayout.of(new Shape3(3, 5, 7), new Shape3(2, 2, 2), 2);
        Window[] windows = {new Window(1, 1, 1)};
        int[] shape = {1, 1, layout.sequenceLength(), 8};
        FloatTensor q = gaussian(rnd, shape), k = gaussian(rnd, shape), v = gaussian(rnd, shape);
        float scale = CpuAttention.defaultScale(8);
        FloatTensor expected = ReferenceAttention.sta(q, k, v, layout, windows, scale);
        FloatTensor unpermuted = CpuAttention.sta(q, k, v, layout, windows, scale);
        assertTrue(relativeL2(unpermuted, expected) > 0.1, "raster tensors fed as tile order must not match");
        FloatTensor permuted = TokenPermutation.toRaster(CpuAttention.sta(TokenPermutation.toTileOrder(q, layout),
                TokenPermutation.toTileOrder(k, layout), TokenPermutation.toTileOrder(v, layout), layout, windows, scale), layout);
        assertClose(permuted, expected, TOLERANCE, "STA after permuting");
    }

    @Test
    void staLseMatchesTheAttendedKeys() {
        Random rnd = new Random(79);
        TokenLayout layout = TokenLayout.of(new Shape3(2, 5, 6), new Shape3(1, 2, 2), 3);
        Window[] windows = {new Window(1, 3, 1), new Window(2, 1, 3)};
        int[] shape = {1, 2, layout.sequenceLength(), 16};
        FloatTensor q = gaussian(rnd, shape), k = gaussian(rnd, shape), v = gaussian(rnd, shape);
        float scale = CpuAttention.defaultScale(16);
        AttentionResult r = CpuAttention.staForward(q, k, v, layout, windows, scale);
        TileGrid grid = layout.grid();
        int s = layout.sequenceLength(), video = grid.videoTokens(), d = 16;
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < s; i++) {
                double max = Double.NEGATIVE_INFINITY;
                double[] scores = new double[s];
                boolean[] allowed = new boolean[s];
                for (int j = 0; j < s; j++) {
                    allowed[j] = i >= video || j >= video
                            || StaMask.allows(grid, windows[h], tileAt(grid, i), tileAt(grid, j));
                    if (allowed[j]) {
                        scores[j] = dot(q, k, h * s * d, i, j, d) * scale;
                        max = Math.max(max, scores[j]);
                    }
                }
                double sum = 0;
                for (int j = 0; j < s; j++) {
                    sum += allowed[j] ? Math.exp(scores[j] - max) : 0;
                }
                assertEquals(max + Math.log(sum), r.lse().data()[h * s + i], 1e-4, "lse head " + h + " row " + i);
            }
        }
    }

    /** The tile holding tile-order position pos. */
    private static int tileAt(TileGrid grid, int pos) {
        int tile = 0;
        while (grid.tileStart(tile + 1) <= pos) {
            tile++;
        }
        return tile;
    }

    // ---------------------------------------------------------------- VSA

    private record VsaCase(Shape3 video, Shape3 tile, int batch, int heads, int d, boolean gate, int... topKs) {
        @Override
        public String toString() {
            return "video " + video + " tile " + tile + " B=" + batch + " heads=" + heads + " d=" + d + " gate=" + gate;
        }
    }

    @Test
    void vsaMatchesReference() {
        List<VsaCase> cases = new ArrayList<>(List.of(
                new VsaCase(new Shape3(3, 5, 7), new Shape3(2, 3, 4), 2, 2, 16, true, 1, 2, 3, 4, 5, 6, 7, 8),
                new VsaCase(new Shape3(3, 5, 7), new Shape3(4, 4, 4), 1, 3, 8, false, 1, 2, 3, 4),
                new VsaCase(new Shape3(5, 6, 10), new Shape3(2, 2, 2), 2, 1, 64, true, 1, 2, 7, 44, 45),
                new VsaCase(new Shape3(5, 6, 10), new Shape3(2, 3, 4), 1, 2, 8, false, 1, 5, 9, 17, 18),
                new VsaCase(new Shape3(1, 9, 11), new Shape3(1, 1, 1), 1, 1, 16, true, 1, 50, 99),
                new VsaCase(new Shape3(1, 9, 11), new Shape3(1, 4, 4), 2, 3, 7, true, 1, 4, 9),
                new VsaCase(new Shape3(4, 8, 8), new Shape3(4, 4, 4), 1, 2, 64, false, 1, 2, 3, 4)));
        for (VsaCase c : cases) {
            for (int topK : c.topKs) {
                checkVsa(c, topK);
            }
        }
    }

    private static void checkVsa(VsaCase c, int topK) {
        TileGrid grid = new TileGrid(c.video, c.tile);
        int tiles = grid.tileCount();
        int[] shape = {c.batch, c.heads, grid.videoTokens(), c.d};
        float scale = CpuAttention.defaultScale(c.d);
        Random rnd = new Random(31L * c.hashCode() + topK);
        for (int attempt = 0; attempt < 50; attempt++) {
            FloatTensor q = tileCorrelated(rnd, grid, shape), k = tileCorrelated(rnd, grid, shape), v = gaussian(rnd, shape);
            FloatTensor gate = c.gate ? gaussian(rnd, shape) : null;
            ReferenceVsa expected = ReferenceAttention.vsa(q, k, v, gate, grid, topK, scale);
            if (nearTie(expected.coarseScores(), tiles, topK)) {
                continue;
            }
            String what = "VSA " + c + " k=" + topK;
            for (VectorOps ops : OPS) {
                VsaForward r = CpuAttention.vsa(TokenPermutation.toTileOrder(q, grid), TokenPermutation.toTileOrder(k, grid),
                        TokenPermutation.toTileOrder(v, grid), gate == null ? null : TokenPermutation.toTileOrder(gate, grid),
                        grid, topK, scale, ops);
                for (int p = 0; p < c.batch * c.heads; p++) {
                    TileLists sel = r.selection()[p];
                    for (int qTile = 0; qTile < tiles; qTile++) {
                        assertArrayEquals(expected.selectedTiles()[p * tiles + qTile], sel.of(qTile),
                                what + " selection of plane " + p + " query tile " + qTile);
                    }
                }
                assertClose(TokenPermutation.toRaster(r.coarse(), grid), expected.coarse(), TOLERANCE, what + " coarse " + ops.name());
                assertClose(TokenPermutation.toRaster(r.fine(), grid), expected.fine(), TOLERANCE, what + " fine " + ops.name());
                assertClose(TokenPermutation.toRaster(r.out(), grid), expected.out(), TOLERANCE, what + " out " + ops.name());
            }
            return;
        }
        fail("no input without near-tied coarse scores found for " + c + " k=" + topK);
    }

    /** Whether some query tile's k-th and (k+1)-th coarse scores are too close for fp32 to order them reliably. */
    private static boolean nearTie(double[][] coarseScores, int tiles, int topK) {
        if (topK == tiles) {
            return false;
        }
        for (double[] plane : coarseScores) {
            for (int qTile = 0; qTile < tiles; qTile++) {
                double[] row = Arrays.copyOfRange(plane, qTile * tiles, (qTile + 1) * tiles);
                Arrays.sort(row);
                if (row[tiles - topK] - row[tiles - topK - 1] < 1e-4) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Gaussian tokens around a Gaussian per-tile centre, so that pooled tiles differ clearly (raster order). */
    private static FloatTensor tileCorrelated(Random rnd, TileGrid grid, int[] shape) {
        int planes = shape[0] * shape[1], s = shape[2], d = shape[3];
        Shape3 video = grid.video();
        FloatTensor x = gaussian(rnd, shape);
        float[] centres = new float[planes * grid.tileCount() * d];
        for (int i = 0; i < centres.length; i++) {
            centres[i] = (float) (2 * rnd.nextGaussian());
        }
        for (int p = 0; p < planes; p++) {
            for (int r = 0; r < s; r++) {
                int tile = grid.tileOf(r / (video.h() * video.w()), r / video.w() % video.h(), r % video.w());
                for (int dd = 0; dd < d; dd++) {
                    x.data()[(p * s + r) * d + dd] += centres[(p * grid.tileCount() + tile) * d + dd];
                }
            }
        }
        return x;
    }

    @Test
    void vsaWithAllTilesHasDenseFineAttention() {
        Random rnd = new Random(55);
        TileGrid grid = new TileGrid(new Shape3(3, 5, 7), new Shape3(2, 2, 2));
        int[] shape = {1, 2, grid.videoTokens(), 16};
        FloatTensor q = gaussian(rnd, shape), k = gaussian(rnd, shape), v = gaussian(rnd, shape);
        float scale = CpuAttention.defaultScale(16);
        VsaForward r = CpuAttention.vsa(q, k, v, null, grid, grid.tileCount(), scale);
        assertTrue(relativeL2(r.fine(), CpuAttention.dense(q, k, v, scale)) < 1e-6);
        FloatTensor sum = FloatTensor.zeros(shape);
        for (int i = 0; i < sum.size(); i++) {
            sum.data()[i] = r.coarse().data()[i] + r.fine().data()[i];
        }
        assertTrue(relativeL2(r.out(), sum) < 1e-7, "no gate means gate 1");
    }

    @Test
    void vsaBreaksExactTiesTowardsTheLowerTile() {
        Random rnd = new Random(56);
        TileGrid grid = new TileGrid(new Shape3(4, 4, 6), new Shape3(2, 2, 2));
        int tiles = grid.tileCount(), s = grid.videoTokens(), d = 8;
        int[] shape = {1, 2, s, d};
        FloatTensor q = gaussian(rnd, shape), v = gaussian(rnd, shape), gate = gaussian(rnd, shape);
        // every tile of k holds the same tokens, so all coarse scores of a query tile are exactly equal
        FloatTensor kTiles = gaussian(rnd, shape);
        int tileSize = grid.tileTokens(0);
        for (int p = 0; p < 2; p++) {
            for (int tile = 1; tile < tiles; tile++) {
                System.arraycopy(kTiles.data(), p * s * d, kTiles.data(), (p * s + grid.tileStart(tile)) * d, tileSize * d);
            }
        }
        FloatTensor kRaster = TokenPermutation.toRaster(kTiles, grid);
        float scale = CpuAttention.defaultScale(d);
        for (int topK : new int[]{1, 3, tiles - 1}) {
            ReferenceVsa expected = ReferenceAttention.vsa(TokenPermutation.toRaster(q, grid), kRaster,
                    TokenPermutation.toRaster(v, grid), TokenPermutation.toRaster(gate, grid), grid, topK, scale);
            int[] lowest = IntStream.range(0, topK).toArray();
            for (VectorOps ops : OPS) {
                VsaForward r = CpuAttention.vsa(q, kTiles, v, gate, grid, topK, scale, ops);
                for (int p = 0; p < 2; p++) {
                    for (int qTile = 0; qTile < tiles; qTile++) {
                        assertArrayEquals(lowest, r.selection()[p].of(qTile), "tied tiles, k=" + topK);
                        assertArrayEquals(lowest, expected.selectedTiles()[p * tiles + qTile], "reference, k=" + topK);
                    }
                }
                assertClose(TokenPermutation.toRaster(r.out(), grid), expected.out(), TOLERANCE, "tied VSA k=" + topK);
            }
        }
    }

    // ---------------------------------------------------------------- bad input

    @Test
    void rejectsBadShapesWithMessagesNamingTheProblem() {
        Random rnd = new Random(1);
        TokenLayout layout = TokenLayout.of(new Shape3(2, 6, 6), new Shape3(2, 2, 2), 3);
        FloatTensor q = gaussian(rnd, 1, 2, 75, 8), k = gaussian(rnd, 1, 2, 75, 8), v = gaussian(rnd, 1, 2, 75, 8);
        Window[] two = {new Window(1, 1, 1), new Window(1, 1, 1)};
        float scale = 0.3f;

        assertMessage(() -> CpuAttention.dense(q, gaussian(rnd, 1, 2, 74, 8), v, scale), "but k has [1, 2, 74, 8]");
        assertMessage(() -> CpuAttention.dense(q, k, gaussian(rnd, 1, 2, 75, 4), scale), "but v has");
        assertMessage(() -> CpuAttention.dense(gaussian(rnd, 2, 75, 8), k, v, scale), "[B, heads, S, d]");
        assertMessage(() -> CpuAttention.dense(q, k, v, Float.NaN), "scale");
        assertMessage(() -> CpuAttention.sta(q, k, v, TokenLayout.of(new Shape3(2, 6, 6), new Shape3(2, 2, 2), 2), two, scale),
                "S=75 but the layout has T*H*W+L=2*6*6+2=74");
        assertMessage(() -> CpuAttention.sta(q, k, v, layout, new Window[]{new Window(1, 1, 1)}, scale), "one STA window per head (2)");
        assertMessage(() -> CpuAttention.sta(q, k, v, layout, new Window[]{new Window(1, 1, 1), new Window(1, 2, 1)}, scale),
                "even extent 2");
        assertMessage(() -> CpuAttention.sta(q, k, v, layout, new Window[]{new Window(3, 1, 1), new Window(1, 1, 1)}, scale),
                "larger than the tile grid");

        TileGrid grid = new TileGrid(new Shape3(2, 4, 4), new Shape3(2, 2, 2));
        FloatTensor vq = gaussian(rnd, 1, 2, 32, 8);
        assertMessage(() -> CpuAttention.vsa(q, k, v, null, grid, 1, scale), "S=75 but the video has T*H*W=2*4*4=32");
        assertMessage(() -> CpuAttention.vsa(vq, vq, vq, null, grid, 0, scale), "topK=0 out of range 1..4");
        assertMessage(() -> CpuAttention.vsa(vq, vq, vq, null, grid, 5, scale), "topK=5 out of range 1..4");
        assertMessage(() -> CpuAttention.vsa(vq, vq, vq, gaussian(rnd, 1, 1, 32, 8), grid, 2, scale), "but gate has");
    }

    private static void assertMessage(Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void nanInputsPropagateToTheRowsTheyReach() {
        Random rnd = new Random(2);
        FloatTensor q = gaussian(rnd, 1, 1, 20, 8), k = gaussian(rnd, 1, 1, 20, 8), v = gaussian(rnd, 1, 1, 20, 8);
        q.data()[3 * 8 + 2] = Float.NaN;
        FloatTensor out = CpuAttention.dense(q, k, v, 0.3f);
        for (int i = 0; i < 20; i++) {
            assertEquals(i == 3, Float.isNaN(out.data()[i * 8]), "row " + i);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static void assertLseMatches(FloatTensor q, FloatTensor k, FloatTensor lse, float scale, String what) {
        int planes = q.dim(0) * q.dim(1), s = q.dim(2), d = q.dim(3);
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < s; i++) {
                double max = Double.NEGATIVE_INFINITY;
                double[] scores = new double[s];
                for (int j = 0; j < s; j++) {
                    scores[j] = dot(q, k, p * s * d, i, j, d) * scale;
                    max = Math.max(max, scores[j]);
                }
                double sum = 0;
                for (double x : scores) {
                    sum += Math.exp(x - max);
                }
                assertEquals(max + Math.log(sum), lse.data()[p * s + i], 1e-4, what + " lse row " + i);
            }
        }
    }

    private static double dot(FloatTensor q, FloatTensor k, int base, int i, int j, int d) {
        double dot = 0;
        for (int dd = 0; dd < d; dd++) {
            dot += (double) q.data()[base + i * d + dd] * k.data()[base + j * d + dd];
        }
        return dot;
    }
}
