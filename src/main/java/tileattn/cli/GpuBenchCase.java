package tileattn.cli;

import java.util.List;
import tileattn.api.AttentionSpec;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * One case of the GPU benchmark: a model's attention shape (batch 1) with an STA window, or dense ({@code window}
 * null). The ids are shared with scripts/peers_sta.py, which times the peers on the same cases.
 */
record GpuBenchCase(String id, String model, Shape3 video, int heads, int headDim, Shape3 tile, Window window,
                    int textLength) {

    static final Shape3 HUNYUAN = new Shape3(30, 48, 80);
    static final Shape3 WAN = new Shape3(21, 30, 52);
    static final Shape3 TILE = new Shape3(6, 8, 8);

    /** The STA forward issue's cases: HunyuanVideo 720p (grid 5×6×10) and Wan-2.1 1.3B 480p (grid 4×4×7). */
    static final List<GpuBenchCase> ALL = List.of(
            sta("hunyuan-sta-3x3x3", "HunyuanVideo", HUNYUAN, 24, new Window(3, 3, 3), 0),
            sta("hunyuan-sta-3x6x10", "HunyuanVideo", HUNYUAN, 24, new Window(3, 6, 10), 0),
            sta("hunyuan-sta-full", "HunyuanVideo", HUNYUAN, 24, new Window(5, 6, 10), 0),
            sta("hunyuan-sta-3x3x3-text256", "HunyuanVideo", HUNYUAN, 24, new Window(3, 3, 3), 256),
            new GpuBenchCase("hunyuan-dense", "HunyuanVideo", HUNYUAN, 24, 128, TILE, null, 0),
            sta("wan-sta-3x3x3", "Wan-2.1", WAN, 12, new Window(3, 3, 3), 0),
            sta("wan-sta-full", "Wan-2.1", WAN, 12, new Window(4, 4, 7), 0),
            new GpuBenchCase("wan-dense", "Wan-2.1", WAN, 12, 128, TILE, null, 0));

    private static GpuBenchCase sta(String id, String model, Shape3 video, int heads, Window window, int text) {
        return new GpuBenchCase(id, model, video, heads, 128, TILE, window, text);
    }

    static GpuBenchCase byId(String id) {
        return ALL.stream().filter(c -> c.id.equals(id)).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "unknown benchmark case '" + id + "'; cases: " + String.join(", ", ALL.stream().map(GpuBenchCase::id)
                        .toList())));
    }

    boolean dense() {
        return window == null;
    }

    TokenLayout layout() {
        return TokenLayout.of(video, tile, textLength);
    }

    int sequenceLength() {
        return layout().sequenceLength();
    }

    int[] shape() {
        return new int[]{1, heads, sequenceLength(), headDim};
    }

    AttentionSpec spec() {
        return dense() ? AttentionSpec.dense() : AttentionSpec.Sta.of(layout(), window);
    }

    /**
     * Σ over query rows of the keys each attends, in one head, counted from the mask definition: a video query
     * reads the real tokens of its window's tiles and every text token; a text query reads all S tokens.
     */
    double attendedPairsPerHead() {
        long s = sequenceLength();
        if (dense()) {
            return (double) s * s;
        }
        TokenLayout layout = layout();
        TileGrid grid = layout.grid();
        TileLists lists = StaMask.tileLists(grid, window);
        int text = layout.textLength();
        double pairs = (double) text * s;
        for (int q = 0; q < grid.tileCount(); q++) {
            long keys = text;
            for (int kv : lists.of(q)) {
                keys += grid.tileTokens(kv);
            }
            pairs += (double) grid.tileTokens(q) * keys;
        }
        return pairs;
    }

    /** Forward FLOPs: 4 · heads · attended pairs · d. */
    double flops() {
        return Measure.flops(heads, 1, attendedPairsPerHead(), headDim);
    }

    /** The fraction of query-key pairs skipped, text included. */
    double sparsity() {
        double s = sequenceLength();
        return 1 - attendedPairsPerHead() / (s * s);
    }

    String describe() {
        String attention = dense() ? "dense"
                : "STA " + window + (window.equals(Window.full(layout().grid().tiles())) ? " (= grid)" : "");
        return model + " " + video + (textLength > 0 ? " + " + textLength + " text" : "") + ", " + heads + " heads, "
                + attention;
    }
}
