package tileattn.search;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import tileattn.layout.Shape3;
import tileattn.mask.Window;
import tileattn.search.picture.HeatMap;
import tileattn.search.picture.Palette;
import tileattn.search.picture.WindowPicture;

/** The pictures of a strategy and of a search: layer × head heat maps and a window on the tile grid. */
public final class StrategyPictures {

    private StrategyPictures() {
    }

    /**
     * Share of the grid's KV tiles each head reads (window volume / grid volume), averaged over steps
     * first..last; cells show the window when it is the same on all those steps.
     */
    public static HeatMap windowVolume(WindowStrategy strategy, int first, int last) {
        Shape3 grid = strategy.grid().tiles();
        int layers = strategy.layers(), heads = strategy.heads();
        double[][] share = new double[layers][heads];
        String[][] text = new String[layers][heads];
        double max = 0;
        for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) {
                Window same = strategy.window(first, l, h);
                for (int s = first; s <= last; s++) {
                    Window w = strategy.window(s, l, h);
                    share[l][h] += (double) w.tileVolume(grid) / grid.volume() / (last - first + 1);
                    same = w.equals(same) ? same : null;
                }
                text[l][h] = same == null ? null : same.toString();
                max = Math.max(max, share[l][h]);
            }
        }
        return new HeatMap("Window volume: share of KV tiles each head reads",
                steps(first, last) + "; " + layout(strategy) + "; 1 = dense"
                        + (first < last ? "; cells name windows kept on every step" : ""),
                "layer", "head", "share of KV tiles read", share, text, 0, scaleTop(max), Palette.BLUES, OptionalDouble.empty(), "");
    }

    /** Relative L2 error of each head's chosen window, averaged over the searched steps (weighted by use). */
    public static HeatMap error(Selection sel, OptionalDouble budget) {
        ErrorTable table = sel.table();
        int[] weights = sel.plan().weights();
        int total = 0;
        for (int w : weights) {
            total += w;
        }
        double[][] error = new double[table.layers()][table.heads()];
        double max = budget.orElse(0);
        for (int l = 0; l < table.layers(); l++) {
            for (int h = 0; h < table.heads(); h++) {
                for (int i = 0; i < weights.length; i++) {
                    error[l][h] += sel.error(i, l, h) * weights[i] / total;
                }
                max = Math.max(max, error[l][h]);
            }
        }
        WindowStrategy strategy = sel.toStrategy();
        return new HeatMap("Error of the chosen windows against dense attention",
                "relative L2, " + steps(sel.plan().fullSteps(), sel.plan().steps() - 1) + "; " + layout(strategy),
                "layer", "head", "relative L2 error", error, null, 0, max, Palette.HEAT, budget,
                budget.isPresent() ? "budget " + budget.getAsDouble() : "");
    }

    /**
     * The most used windows of steps first..last other than the full one (at most three), for a query tile at an
     * edge; when none of them is clamped there (every extent 1 or the whole dimension), the most used window that
     * is clamped is added, so that the picture shows how windows stay inside the grid.
     */
    public static WindowPicture windows(WindowStrategy strategy, int first, int last) {
        Shape3 grid = strategy.grid().tiles();
        Window full = Window.full(grid);
        Map<Window, Integer> counts = new HashMap<>();
        for (int s = first; s <= last; s++) {
            for (int l = 0; l < strategy.layers(); l++) {
                for (Window w : strategy.windowsFor(s, l)) {
                    counts.merge(w, 1, Integer::sum);
                }
            }
        }
        List<Window> byUse = counts.keySet().stream().filter(w -> !w.equals(full))
                .sorted(Comparator.comparing((Window w) -> -counts.get(w)).thenComparing(Window::toString)).toList();
        List<Window> shown = new ArrayList<>(byUse.subList(0, Math.min(3, byUse.size())));
        if (shown.stream().noneMatch(w -> clamps(w, grid))) {
            byUse.stream().filter(w -> clamps(w, grid)).findFirst().ifPresent(shown::add);
        }
        if (shown.isEmpty()) {
            shown.add(full);
        }
        return new WindowPicture("Most used windows, for one query tile at the grid's edge", grid, shown, WindowPicture.edgeQuery(grid));
    }

    /** Whether some extent is neither 1 nor the whole dimension, so its centre can be clamped. */
    private static boolean clamps(Window w, Shape3 grid) {
        for (int a = 0; a < 3; a++) {
            if (w.get(a) > 1 && w.get(a) < grid.get(a)) {
                return true;
            }
        }
        return false;
    }

    /** The smallest of 0.1, 0.2, 0.25, 0.5, 1 at or above the largest value, so that sparse strategies keep contrast. */
    private static double scaleTop(double max) {
        for (double top : new double[]{0.1, 0.2, 0.25, 0.5}) {
            if (max <= top) {
                return top;
            }
        }
        return 1;
    }

    private static String steps(int first, int last) {
        return first == last ? "step " + first : "mean over steps " + first + "–" + last;
    }

    private static String layout(WindowStrategy s) {
        return "video " + s.grid().video() + ", tile " + s.grid().tile() + ", grid " + s.grid().tiles();
    }
}
