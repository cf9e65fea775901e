package tileattn.search;

import java.util.Arrays;
import tileattn.mask.Window;

/**
 * The window chosen for every searched step, layer and head, as indices into the error table's candidates,
 * and the strategy it makes for all steps.
 *
 * @param chosen {@code chosen[stepIndex][layer][head]} = candidate index
 * @param rule   a one-line description of the rule that chose, for the report
 */
public record Selection(ErrorTable table, StepPlan plan, int[][][] chosen, String rule) {

    public Selection {
        if (!Arrays.equals(table.steps(), plan.searchedSteps())) {
            throw new IllegalArgumentException("the error table covers steps " + Arrays.toString(table.steps())
                    + " but the plan searches " + Arrays.toString(plan.searchedSteps()));
        }
        if (chosen.length != table.steps().length) {
            throw new IllegalArgumentException("a choice is needed for each of the " + table.steps().length + " searched steps");
        }
    }

    public Window window(int stepIndex, int layer, int head) {
        return table.candidates().get(chosen[stepIndex][layer][head]);
    }

    public double error(int stepIndex, int layer, int head) {
        return table.error(stepIndex, layer, head, chosen[stepIndex][layer][head]);
    }

    /** The strategy over all of the plan's steps: dense for the forced steps, the choices elsewhere. */
    public WindowStrategy toStrategy() {
        int layers = table.layers(), heads = table.heads();
        Window full = Window.full(table.layout().grid().tiles());
        Window[][] dense = new Window[layers][heads];
        for (Window[] layer : dense) {
            Arrays.fill(layer, full);
        }
        Window[][][] bySource = new Window[chosen.length][layers][heads];
        for (int i = 0; i < chosen.length; i++) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    bySource[i][l][h] = window(i, l, h);
                }
            }
        }
        Window[][][] windows = new Window[plan.steps()][][];
        for (int s = 0; s < plan.steps(); s++) {
            int source = plan.sourceOf(s);
            windows[s] = source < 0 ? dense : bySource[source];
        }
        return new WindowStrategy(table.layout(), windows);
    }
}
