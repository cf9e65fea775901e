package tileattn.search;

import java.util.List;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * What the search measured: for every searched step, layer, head and candidate window, the relative L2 error of
 * the head's STA output against its dense output, averaged over the samples captured for that step and layer.
 *
 * @param steps  the searched denoising steps, ascending
 * @param errors {@code errors[stepIndex][layer][head][candidate]}, stepIndex into {@code steps}
 */
public record ErrorTable(TokenLayout layout, List<Window> candidates, int[] steps, int layers, int heads,
                         double[][][][] errors) {

    public ErrorTable {
        candidates = List.copyOf(candidates);
        steps = steps.clone();
        if (steps.length == 0 || candidates.isEmpty()) {
            throw new IllegalArgumentException("an error table needs at least one step and one candidate");
        }
        if (errors.length != steps.length) {
            throw new IllegalArgumentException("errors hold " + errors.length + " steps, expected " + steps.length);
        }
        for (double[][][] step : errors) {
            if (step.length != layers || step[0].length != heads || step[0][0].length != candidates.size()) {
                throw new IllegalArgumentException("errors must be [steps][" + layers + "][" + heads + "][" + candidates.size() + "]");
            }
        }
    }

    public double error(int stepIndex, int layer, int head, int candidate) {
        return errors[stepIndex][layer][head][candidate];
    }

    /** Attended (query, key) pairs of each candidate for one head, text included; see {@link AttendedPairs}. */
    public long[] candidatePairs() {
        long[] pairs = new long[candidates.size()];
        for (int c = 0; c < pairs.length; c++) {
            pairs[c] = AttendedPairs.of(layout, candidates.get(c));
        }
        return pairs;
    }

    public int indexOf(Window window) {
        return candidates.indexOf(window);
    }
}
