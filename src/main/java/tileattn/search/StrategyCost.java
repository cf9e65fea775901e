package tileattn.search;

import java.util.HashMap;
import java.util.Map;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

/**
 * The attention work a strategy implies, in (query, key) token pairs per head and call (see
 * {@link AttendedPairs}), summed over steps, layers and heads.
 */
public final class StrategyCost {

    private final WindowStrategy strategy;
    private final Map<Window, Long> pairs = new HashMap<>();
    private final Map<Window, Double> videoSparsity = new HashMap<>();

    public StrategyCost(WindowStrategy strategy) {
        this.strategy = strategy;
    }

    public long pairs(Window w) {
        return pairs.computeIfAbsent(w, x -> AttendedPairs.of(strategy.layout(), x));
    }

    /** Share of video-video token pairs a window skips (how STA papers state sparsity). */
    public double videoSparsity(Window w) {
        return videoSparsity.computeIfAbsent(w, x -> StaMask.sparsity(strategy.grid(), x));
    }

    /** Attended pairs of steps first..last (inclusive), all layers and heads. */
    public double attended(int first, int last) {
        double sum = 0;
        for (int s = first; s <= last; s++) {
            for (int l = 0; l < strategy.layers(); l++) {
                for (Window w : strategy.windowsFor(s, l)) {
                    sum += pairs(w);
                }
            }
        }
        return sum;
    }

    /** Pairs of dense attention over steps first..last. */
    public double dense(int first, int last) {
        return (double) (last - first + 1) * strategy.layers() * strategy.heads() * AttendedPairs.dense(strategy.layout());
    }

    /** Predicted attention speed-up of steps first..last over dense attention: dense pairs / attended pairs. */
    public double speedup(int first, int last) {
        return dense(first, last) / attended(first, last);
    }

    /** Predicted attention speed-up of the whole run. */
    public double speedup() {
        return speedup(0, strategy.steps() - 1);
    }

    /** Mean share of video pairs skipped over steps first..last, all layers and heads. */
    public double videoSparsity(int first, int last) {
        double sum = 0;
        for (int s = first; s <= last; s++) {
            for (int l = 0; l < strategy.layers(); l++) {
                for (Window w : strategy.windowsFor(s, l)) {
                    sum += videoSparsity(w);
                }
            }
        }
        return sum / ((double) (last - first + 1) * strategy.layers() * strategy.heads());
    }

    public TokenLayout layout() {
        return strategy.layout();
    }
}
