package tileattn.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import tileattn.mask.Window;
import tileattn.search.WindowStrategy;

/**
 * The attention time of a whole generation under a window strategy, from one measured launch time per distinct
 * window (every head of the launch using that window) and one for dense attention.
 *
 * <p>Heads are independent blocks of work of the same size, so a launch whose heads use different windows takes
 * about Σ_heads t(window_h) / heads; a generation is the sum of that over every (step, layer). Dense attention
 * runs steps × layers launches of t(dense).
 */
final class WorkloadEstimate {

    /** One attention call of the generation. */
    record Call(int step, int layer) {
    }

    private final WindowStrategy strategy;

    WorkloadEstimate(WindowStrategy strategy) {
        this.strategy = strategy;
    }

    /** Every window the strategy uses, most used first. */
    List<Window> distinctWindows() {
        return List.copyOf(strategy.windowCounts().keySet());
    }

    /** Predicted milliseconds of one (step, layer) call with its per-head windows. */
    double callMillis(Call call, Map<Window, Double> windowMillis) {
        Window[] windows = strategy.windowsFor(call.step(), call.layer());
        double sum = 0;
        for (Window w : windows) {
            sum += millisOf(w, windowMillis);
        }
        return sum / windows.length;
    }

    /** Seconds of attention over all steps × layers under the strategy. */
    double strategySeconds(Map<Window, Double> windowMillis) {
        double headMillis = 0;
        for (Map.Entry<Window, Integer> e : strategy.windowCounts().entrySet()) {
            headMillis += e.getValue() * millisOf(e.getKey(), windowMillis);
        }
        return headMillis / strategy.heads() / 1000;
    }

    /** Seconds of attention over all steps × layers with dense attention. */
    double denseSeconds(double denseMillis) {
        return (double) strategy.steps() * strategy.layers() * denseMillis / 1000;
    }

    /** Heads of the whole generation (steps × layers × heads) that use {@code w}. */
    int uses(Window w) {
        return strategy.windowCounts().getOrDefault(w, 0);
    }

    /**
     * Up to {@code n} calls whose heads mix the most distinct windows (ties: earliest step, then layer), each with
     * a window set different from the ones already chosen: the calls that test the per-head additivity hardest.
     */
    List<Call> mixedCalls(int n) {
        List<Call> calls = new ArrayList<>();
        int[][] distinct = new int[strategy.steps()][strategy.layers()];
        for (int s = 0; s < strategy.steps(); s++) {
            for (int l = 0; l < strategy.layers(); l++) {
                distinct[s][l] = new HashSet<>(Arrays.asList(strategy.windowsFor(s, l))).size();
                if (distinct[s][l] > 1) {
                    calls.add(new Call(s, l));
                }
            }
        }
        calls.sort(Comparator.comparingInt((Call c) -> -distinct[c.step()][c.layer()]));
        List<Call> chosen = new ArrayList<>();
        for (Call c : calls) {
            if (chosen.size() == n) {
                break;
            }
            Window[] windows = strategy.windowsFor(c.step(), c.layer());
            if (chosen.stream().noneMatch(o -> Arrays.equals(strategy.windowsFor(o.step(), o.layer()), windows))) {
                chosen.add(c);
            }
        }
        return chosen;
    }

    private static double millisOf(Window w, Map<Window, Double> windowMillis) {
        Double ms = windowMillis.get(w);
        if (ms == null) {
            throw new IllegalArgumentException("no time measured for window " + w);
        }
        return ms;
    }
}
