package tileattn.search;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * An STA window for every (denoising step, layer, head) of a model run on one token layout. Steps count
 * denoising steps from 0 in the order the model runs them; layers and heads count from 0. Every window is
 * checked against the layout's tile grid when the strategy is made.
 *
 * <p>Files: {@link StrategyJson} (this project's format, step ranges of [layer][head] windows) and
 * {@link StaAuthorsJson} (the STA authors' "step_layer_head" → [wt, wh, ww] object).
 */
public final class WindowStrategy {

    /** Consecutive steps {@code first..last} (inclusive) that use the same windows for every layer and head. */
    public record StepRange(int first, int last) {
        public int length() {
            return last - first + 1;
        }
    }

    private final TokenLayout layout;
    private final int steps;
    private final int layers;
    private final int heads;
    private final Window[][][] windows;

    /**
     * @param windows {@code windows[step][layer][head]}, rectangular; the arrays are copied
     * @throws IllegalArgumentException naming the step, layer and head of a missing or misfitting window
     */
    public WindowStrategy(TokenLayout layout, Window[][][] windows) {
        this.layout = layout;
        this.steps = windows.length;
        if (steps == 0 || windows[0].length == 0 || windows[0][0].length == 0) {
            throw new IllegalArgumentException("a strategy needs at least one step, one layer and one head");
        }
        this.layers = windows[0].length;
        this.heads = windows[0][0].length;
        this.windows = new Window[steps][layers][];
        Shape3 grid = layout.grid().tiles();
        for (int s = 0; s < steps; s++) {
            if (windows[s].length != layers) {
                throw new IllegalArgumentException("step " + s + " has " + windows[s].length + " layers, step 0 has " + layers);
            }
            for (int l = 0; l < layers; l++) {
                if (windows[s][l].length != heads) {
                    throw new IllegalArgumentException("step " + s + ", layer " + l + " has " + windows[s][l].length
                            + " heads, step 0 layer 0 has " + heads);
                }
                this.windows[s][l] = windows[s][l].clone();
                for (int h = 0; h < heads; h++) {
                    Window w = windows[s][l][h];
                    if (w == null) {
                        throw new IllegalArgumentException("step " + s + ", layer " + l + ", head " + h + " has no window");
                    }
                    checkFits(w, grid, s, l, h);
                }
            }
        }
    }

    /** The same window for every step, layer and head. */
    public static WindowStrategy uniform(TokenLayout layout, int steps, int layers, int heads, Window window) {
        Window[][][] w = new Window[steps][layers][heads];
        for (Window[][] step : w) {
            for (Window[] layer : step) {
                Arrays.fill(layer, window);
            }
        }
        return new WindowStrategy(layout, w);
    }

    private static void checkFits(Window w, Shape3 grid, int step, int layer, int head) {
        try {
            w.checkFits(grid);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("step " + step + ", layer " + layer + ", head " + head + ": " + e.getMessage(), e);
        }
    }

    public TokenLayout layout() {
        return layout;
    }

    public TileGrid grid() {
        return layout.grid();
    }

    public int steps() {
        return steps;
    }

    public int layers() {
        return layers;
    }

    public int heads() {
        return heads;
    }

    public Window window(int step, int layer, int head) {
        checkIndex(step, layer);
        if (head < 0 || head >= heads) {
            throw new IllegalArgumentException("head " + head + " is outside the strategy's " + heads + " heads");
        }
        return windows[step][layer][head];
    }

    /** The window of every head of one attention call, as {@code sta(..., windowsPerHead, ...)} takes them. */
    public Window[] windowsFor(int step, int layer) {
        checkIndex(step, layer);
        return windows[step][layer].clone();
    }

    private void checkIndex(int step, int layer) {
        if (step < 0 || step >= steps) {
            throw new IllegalArgumentException("step " + step + " is outside the strategy's " + steps + " steps (0.." + (steps - 1) + ")");
        }
        if (layer < 0 || layer >= layers) {
            throw new IllegalArgumentException("layer " + layer + " is outside the strategy's " + layers + " layers (0.." + (layers - 1) + ")");
        }
    }

    /**
     * Checks every window against another tile grid (for running the strategy on a layout other than the one
     * it was made for), naming the first step, layer and head whose window does not fit.
     */
    public void checkFits(Shape3 grid) {
        for (int s = 0; s < steps; s++) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    checkFits(windows[s][l][h], grid, s, l, h);
                }
            }
        }
    }

    /** Whether every layer and head of a step attends densely (window = the whole grid). */
    public boolean isFull(int step) {
        checkIndex(step, 0);
        Window full = Window.full(grid().tiles());
        for (Window[] layer : windows[step]) {
            for (Window w : layer) {
                if (!w.equals(full)) {
                    return false;
                }
            }
        }
        return true;
    }

    /** Maximal runs of consecutive steps whose windows are identical for every layer and head. */
    public List<StepRange> stepRanges() {
        List<StepRange> ranges = new ArrayList<>();
        int first = 0;
        for (int s = 1; s <= steps; s++) {
            if (s == steps || !Arrays.deepEquals(windows[s], windows[first])) {
                ranges.add(new StepRange(first, s - 1));
                first = s;
            }
        }
        return ranges;
    }

    /** How many (step, layer, head) entries use each window, most used first (ties: first seen). */
    public Map<Window, Integer> windowCounts() {
        Map<Window, Integer> counts = new LinkedHashMap<>();
        for (Window[][] step : windows) {
            for (Window[] layer : step) {
                for (Window w : layer) {
                    counts.merge(w, 1, Integer::sum);
                }
            }
        }
        Map<Window, Integer> sorted = new LinkedHashMap<>();
        counts.entrySet().stream()
                .sorted((a, b) -> Integer.compare(b.getValue(), a.getValue()))
                .forEachOrdered(e -> sorted.put(e.getKey(), e.getValue()));
        return sorted;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WindowStrategy s && s.layout.equals(layout) && Arrays.deepEquals(s.windows, windows);
    }

    @Override
    public int hashCode() {
        return layout.hashCode() * 31 + Arrays.deepHashCode(windows);
    }

    @Override
    public String toString() {
        return "STA strategy of " + steps + " steps × " + layers + " layers × " + heads + " heads on " + layout.grid()
                + (layout.textLength() > 0 ? " + " + layout.textLength() + " text tokens" : "");
    }
}
