package tileattn.search;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.StaMask;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

class WindowSearchTest {

    /** Video 3×5×7 in tiles of 1×2×3: grid 3×3×3 with partial edge tiles; 2 text tokens. */
    static final Shape3 VIDEO = new Shape3(3, 5, 7);
    static final Shape3 TILE = new Shape3(1, 2, 3);

    @Test
    void errorsMatchAttentionComputedInRasterOrder() throws Exception {
        CaptureSet set = ExampleCaptures.create(VIDEO, 2, 2, 2, 3, 8, 99);
        List<Window> candidates = List.of(new Window(1, 1, 1), new Window(3, 1, 3), new Window(1, 3, 3), new Window(3, 3, 3));
        StepPlan plan = StepPlan.forCaptured(2, 0, set.steps());
        ErrorTable table = new WindowSearch(new LiteralBackend()).measure(set, TILE, candidates, plan, WindowSearch.Progress.none());
        TileGrid grid = new TileGrid(VIDEO, TILE);
        assertEquals(0.0, table.error(1, 1, 2, 3), "the full window is dense");
        for (int step = 0; step < 2; step++) {
            for (int layer = 0; layer < 2; layer++) {
                Capture.Qkv qkv = set.of(step, layer).getFirst().load();
                double[][] dense = rasterAttention(qkv, grid, null, 2);
                for (int c = 0; c < 3; c++) {
                    double[][] sparse = rasterAttention(qkv, grid, candidates.get(c), 2);
                    for (int h = 0; h < 3; h++) {
                        double diff = 0, norm = 0;
                        for (int i = 0; i < VIDEO.volume() * 8; i++) {
                            diff += Math.pow(sparse[h][i] - dense[h][i], 2);
                            norm += dense[h][i] * dense[h][i];
                        }
                        assertEquals(Math.sqrt(diff / norm), table.error(step, layer, h, c), 1e-5,
                                "step " + step + " layer " + layer + " head " + h + " window " + candidates.get(c));
                        assertTrue(table.error(step, layer, h, c) > 1e-4, "a window smaller than the grid changes the output");
                    }
                }
            }
        }
    }

    /** Attention of one capture (B = 1) in raster order, masking by each token's own tile coordinates. */
    private static double[][] rasterAttention(Capture.Qkv qkv, TileGrid grid, Window window, int text) {
        int heads = qkv.q().dim(1), s = qkv.q().dim(2), d = qkv.q().dim(3), n = grid.videoTokens();
        Shape3 v = grid.video();
        int[] tile = new int[n];
        for (int i = 0; i < n; i++) {
            tile[i] = grid.tileOf(i / (v.h() * v.w()), i / v.w() % v.h(), i % v.w());
        }
        double[][] out = new double[heads][s * d];
        float[] q = qkv.q().data(), k = qkv.k().data(), val = qkv.v().data();
        double scale = 1 / Math.sqrt(d);
        for (int h = 0; h < heads; h++) {
            int base = h * s * d;
            for (int i = 0; i < s; i++) {
                double[] p = new double[s];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < s; j++) {
                    if (window != null && i < n && j < n && !StaMask.allows(grid, window, tile[i], tile[j])) {
                        p[j] = Double.NaN;
                        continue;
                    }
                    double dot = 0;
                    for (int x = 0; x < d; x++) {
                        dot += (double) q[base + i * d + x] * k[base + j * d + x];
                    }
                    p[j] = dot * scale;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < s; j++) {
                    p[j] = Double.isNaN(p[j]) ? 0 : Math.exp(p[j] - max);
                    sum += p[j];
                }
                for (int x = 0; x < d; x++) {
                    double acc = 0;
                    for (int j = 0; j < s; j++) {
                        acc += p[j] * val[base + j * d + x];
                    }
                    out[h][i * d + x] = acc / sum;
                }
            }
        }
        return out;
    }

    @Test
    void theExampleHasHeadsThatChooseDifferentWindows() throws Exception {
        CaptureSet set = ExampleCaptures.create(new Shape3(3, 6, 8), 2, 1, 1, 6, 16, 7);
        Shape3 tile = new Shape3(1, 2, 2);
        List<Window> candidates = CandidateWindows.all(new TileGrid(set.video(), tile).tiles());
        StepPlan plan = StepPlan.forCaptured(1, 0, set.steps());
        ErrorTable table = new WindowSearch(new LiteralBackend()).measure(set, tile, candidates, plan, WindowSearch.Progress.none());
        Selection sel = BudgetRule.budget(0.1).select(table, plan);
        long distinct = java.util.stream.IntStream.range(0, 6).mapToObj(h -> sel.window(0, 0, h)).distinct().count();
        assertTrue(distinct >= 4, "six kinds of heads chose only " + distinct + " distinct windows: "
                + java.util.stream.IntStream.range(0, 6).mapToObj(h -> sel.window(0, 0, h) + "=" + sel.error(0, 0, h)).toList());
    }

    @Test
    void relativeErrorCountsVideoQueriesOnly() {
        FloatTensor ref = new FloatTensor(new int[]{1, 2, 2, 1}, new float[]{3, 4, 1, 100});
        FloatTensor out = new FloatTensor(new int[]{1, 2, 2, 1}, new float[]{3, 0, 1, -100});
        double[] e = WindowSearch.relativeErrors(out, ref, 1);
        assertArrayEquals(new double[]{0, 0}, e, "only the first (video) token counts");
        e = WindowSearch.relativeErrors(out, ref, 2);
        assertEquals(4.0 / 5.0, e[0], 1e-12);
        assertEquals(200 / Math.sqrt(1 + 10000), e[1], 1e-12);
    }
}
