package tileattn.search;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.OptionalDouble;
import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

class SelectionRuleTest {

    static final TokenLayout LAYOUT = TokenLayout.of(new Shape3(5, 7, 9), new Shape3(1, 2, 2), 3);

    /** Errors that fall with the window's size, plus noise, so that the budget separates windows. */
    static ErrorTable randomTable(Random rnd, int[] steps, int layers, int heads) {
        List<Window> candidates = CandidateWindows.all(LAYOUT.grid().tiles());
        long[] pairs = candidates.stream().mapToLong(w -> AttendedPairs.of(LAYOUT, w)).toArray();
        long dense = AttendedPairs.dense(LAYOUT);
        Window full = Window.full(LAYOUT.grid().tiles());
        double[][][][] e = new double[steps.length][layers][heads][candidates.size()];
        for (double[][][] step : e) {
            for (double[][] layer : step) {
                for (double[] head : layer) {
                    double locality = 0.2 + rnd.nextDouble();
                    for (int c = 0; c < head.length; c++) {
                        head[c] = candidates.get(c).equals(full) ? 0
                                : locality * (1 - (double) pairs[c] / dense) * (0.5 + rnd.nextDouble());
                    }
                }
            }
        }
        return new ErrorTable(LAYOUT, candidates, steps, layers, heads, e);
    }

    @Test
    void budgetRuleTakesTheSparsestWindowUnderBudget() {
        Random rnd = new Random(17);
        for (double budget : new double[]{0, 0.01, 0.05, 0.2, 2}) {
            ErrorTable table = randomTable(rnd, new int[]{2, 5}, 3, 4);
            StepPlan plan = StepPlan.forCaptured(8, 2, new int[]{0, 2, 5});
            Selection sel = BudgetRule.budget(budget).select(table, plan);
            long[] pairs = table.candidatePairs();
            for (int i = 0; i < 2; i++) {
                for (int l = 0; l < 3; l++) {
                    for (int h = 0; h < 4; h++) {
                        int chosen = sel.chosen()[i][l][h];
                        assertTrue(sel.error(i, l, h) <= budget, "chosen error within budget");
                        for (int c = 0; c < pairs.length; c++) {
                            if (pairs[c] < pairs[chosen]) {
                                assertTrue(table.error(i, l, h, c) > budget, "a sparser candidate " + table.candidates().get(c)
                                        + " was under budget " + budget + " but " + sel.window(i, l, h) + " was chosen");
                            }
                        }
                    }
                }
            }
            if (budget >= 2) {
                long min = java.util.Arrays.stream(pairs).min().orElseThrow();
                assertEquals(min, pairs[sel.chosen()[0][0][0]], "everything is under a huge budget: the sparsest window");
            }
        }
    }

    @Test
    void targetSparsityIsReachedGreedily() {
        Random rnd = new Random(23);
        ErrorTable table = randomTable(rnd, new int[]{0, 3}, 4, 5);
        StepPlan plan = StepPlan.forCaptured(6, 0, new int[]{0, 3});
        int[] weights = plan.weights();
        assertArrayEquals(new int[]{3, 3}, weights);
        long[] pairs = table.candidatePairs();
        double budgetOnly = sparsity(BudgetRule.budget(0.02).select(table, plan), pairs, weights);
        for (double target : new double[]{0.3, 0.6, 0.85}) {
            Selection sel = new BudgetRule(OptionalDouble.of(0.02), OptionalDouble.of(target)).select(table, plan);
            double reached = sparsity(sel, pairs, weights);
            assertTrue(reached >= Math.min(target, 1) - 1e-12 || reached >= maxSparsity(table, pairs),
                    "target " + target + " reached " + reached);
            if (budgetOnly >= target) {
                assertEquals(budgetOnly, reached, 1e-12, "a target already met changes nothing");
            } else {
                assertTrue(reached > budgetOnly);
            }
            Selection fromFull = new BudgetRule(OptionalDouble.empty(), OptionalDouble.of(target)).select(table, plan);
            assertTrue(sparsity(fromFull, pairs, weights) >= target);
        }
        Selection unreachable = new BudgetRule(OptionalDouble.of(0.0), OptionalDouble.of(0.999)).select(table, plan);
        assertEquals(maxSparsity(table, pairs), sparsity(unreachable, pairs, weights), 1e-12,
                "an unreachable target leaves every head at its sparsest window");
    }

    @Test
    void greedyMovesCostTheLeastErrorFirst() {
        // Two heads, three candidates: moving head 0 costs much more error per saved pair than head 1.
        List<Window> candidates = List.of(new Window(1, 1, 1), new Window(3, 3, 3), Window.full(LAYOUT.grid().tiles()));
        double[][][][] e = {{{{0.5, 0.2, 0}, {0.01, 0.001, 0}}}};
        ErrorTable table = new ErrorTable(LAYOUT, candidates, new int[]{0}, 1, 2, e);
        long[] pairs = table.candidatePairs();
        StepPlan plan = StepPlan.forCaptured(1, 0, new int[]{0});
        double justOneMove = 1 - (pairs[2] + pairs[0]) / (2.0 * AttendedPairs.dense(LAYOUT));
        Selection sel = new BudgetRule(OptionalDouble.empty(), OptionalDouble.of(justOneMove - 1e-9)).select(table, plan);
        assertEquals(2, sel.chosen()[0][0][0], "the expensive head stays dense");
        assertEquals(0, sel.chosen()[0][0][1], "the cheap head goes sparsest");
    }

    @Test
    void lowestErrorRuleAndForcedDenseSteps() {
        Random rnd = new Random(29);
        List<Window> candidates = List.of(new Window(5, 3, 3), new Window(1, 3, 5), new Window(3, 3, 3));
        double[][][][] e = new double[2][3][4][3];
        for (double[][][] step : e) {
            for (double[][] layer : step) {
                for (double[] head : layer) {
                    for (int c = 0; c < 3; c++) {
                        head[c] = rnd.nextDouble();
                    }
                }
            }
        }
        ErrorTable table = new ErrorTable(LAYOUT, candidates, new int[]{3, 6}, 3, 4, e);
        StepPlan plan = StepPlan.forCaptured(10, 3, new int[]{1, 3, 6});
        Selection sel = new LowestErrorRule().select(table, plan);
        WindowStrategy strategy = sel.toStrategy();
        assertEquals(10, strategy.steps());
        for (int s = 0; s < 10; s++) {
            assertEquals(s < 3, strategy.isFull(s), "step " + s);
        }
        for (int i = 0; i < 2; i++) {
            for (int l = 0; l < 3; l++) {
                for (int h = 0; h < 4; h++) {
                    double best = Math.min(e[i][l][h][0], Math.min(e[i][l][h][1], e[i][l][h][2]));
                    assertEquals(best, sel.error(i, l, h));
                    int firstStep = i == 0 ? 3 : 6, lastStep = i == 0 ? 5 : 9;
                    for (int s = firstStep; s <= lastStep; s++) {
                        assertEquals(sel.window(i, l, h), strategy.window(s, l, h));
                    }
                }
            }
        }
    }

    @Test
    void stepPlanMapsEveryStepToASearchedOne() {
        StepPlan plan = StepPlan.forCaptured(12, 2, new int[]{0, 4, 8, 9});
        assertArrayEquals(new int[]{4, 8, 9}, plan.searchedSteps());
        int[] expected = {-1, -1, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2};
        for (int s = 0; s < 12; s++) {
            assertEquals(expected[s], plan.sourceOf(s), "step " + s);
        }
        assertArrayEquals(new int[]{6, 1, 3}, plan.weights());
        var e = assertThrows(IllegalArgumentException.class, () -> StepPlan.forCaptured(5, 0, new int[]{5}));
        assertTrue(e.getMessage().contains("step 5 was captured, but the strategy has only 5 steps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> StepPlan.forCaptured(10, 4, new int[]{0, 3}));
        assertTrue(e.getMessage().contains("no captured step at or after step 4"), e.getMessage());
        assertEquals(0, StepPlan.forCaptured(3, 3, new int[]{0}).searchedSteps().length, "all dense: nothing to search");
    }

    private static double sparsity(Selection sel, long[] pairs, int[] weights) {
        double attended = 0, dense = 0;
        for (int i = 0; i < weights.length; i++) {
            for (int[] layer : sel.chosen()[i]) {
                for (int c : layer) {
                    attended += weights[i] * (double) pairs[c];
                    dense += weights[i] * (double) AttendedPairs.dense(LAYOUT);
                }
            }
        }
        return 1 - attended / dense;
    }

    private static double maxSparsity(ErrorTable table, long[] pairs) {
        return 1 - (double) java.util.Arrays.stream(pairs).min().orElseThrow() / AttendedPairs.dense(table.layout());
    }
}
