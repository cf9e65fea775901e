package tileattn.search;

import java.util.OptionalDouble;
import java.util.PriorityQueue;
import tileattn.mask.Window;

/**
 * tileattn's rule, in two stages.
 * <ol>
 * <li>Budget: every head takes the sparsest candidate (fewest attended pairs; ties: lower error) whose error is
 * at most the budget, or the full window when none is. Without a budget every head starts from the full
 * window.</li>
 * <li>Target (optional): while the overall sparsity of the searched steps (each weighted by the number of
 * strategy steps that use it) is below the target, the one head move that costs the least error per attended
 * pair saved is made: a head goes to a sparser candidate, the one with the smallest (error increase) /
 * (pairs saved). Heads moved this way may exceed the budget; a target that the candidates cannot reach leaves
 * every head at its sparsest candidate. A target already met changes nothing.</li>
 * </ol>
 * The candidate list must contain the full window.
 */
public record BudgetRule(OptionalDouble budget, OptionalDouble targetSparsity) implements SelectionRule {

    public BudgetRule {
        if (budget.isPresent() && !(budget.getAsDouble() >= 0)) {
            throw new IllegalArgumentException("the error budget must be >= 0, got " + budget.getAsDouble());
        }
        if (targetSparsity.isPresent() && !(targetSparsity.getAsDouble() >= 0 && targetSparsity.getAsDouble() < 1)) {
            throw new IllegalArgumentException("the target sparsity must be in [0, 1), got " + targetSparsity.getAsDouble());
        }
    }

    public static BudgetRule budget(double budget) {
        return new BudgetRule(OptionalDouble.of(budget), OptionalDouble.empty());
    }

    @Override
    public Selection select(ErrorTable table, StepPlan plan) {
        Window full = Window.full(table.layout().grid().tiles());
        int fullIndex = table.indexOf(full);
        if (fullIndex < 0) {
            throw new IllegalArgumentException("the budget rule needs the full window " + full + " among the candidates");
        }
        long[] pairs = table.candidatePairs();
        int steps = table.steps().length, layers = table.layers(), heads = table.heads();
        int[][][] chosen = new int[steps][layers][heads];
        for (int i = 0; i < steps; i++) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    chosen[i][l][h] = budget.isPresent() ? sparsestUnderBudget(table, pairs, i, l, h, fullIndex) : fullIndex;
                }
            }
        }
        if (targetSparsity.isPresent()) {
            reachTarget(table, plan.weights(), pairs, chosen);
        }
        return new Selection(table, plan, chosen, describe());
    }

    private int sparsestUnderBudget(ErrorTable table, long[] pairs, int i, int l, int h, int fullIndex) {
        double limit = budget.getAsDouble();
        int best = -1;
        for (int c = 0; c < pairs.length; c++) {
            double e = table.error(i, l, h, c);
            if (e <= limit && (best < 0 || pairs[c] < pairs[best] || (pairs[c] == pairs[best] && e < table.error(i, l, h, best)))) {
                best = c;
            }
        }
        return best < 0 ? fullIndex : best;
    }

    private record Move(double cost, int step, int layer, int head, int from, int to) {
    }

    private void reachTarget(ErrorTable table, int[] weights, long[] pairs, int[][][] chosen) {
        int layers = table.layers(), heads = table.heads();
        double dense = 0, attended = 0;
        for (int i = 0; i < chosen.length; i++) {
            dense += (double) weights[i] * layers * heads * AttendedPairs.dense(table.layout());
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    attended += (double) weights[i] * pairs[chosen[i][l][h]];
                }
            }
        }
        double allowed = (1 - targetSparsity.getAsDouble()) * dense;
        PriorityQueue<Move> moves = new PriorityQueue<>((a, b) -> Double.compare(a.cost, b.cost));
        for (int i = 0; i < chosen.length; i++) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    offer(moves, table, pairs, i, l, h, chosen[i][l][h]);
                }
            }
        }
        while (attended > allowed && !moves.isEmpty()) {
            Move m = moves.poll();
            if (chosen[m.step][m.layer][m.head] != m.from) {
                continue;
            }
            chosen[m.step][m.layer][m.head] = m.to;
            attended -= (double) weights[m.step] * (pairs[m.from] - pairs[m.to]);
            offer(moves, table, pairs, m.step, m.layer, m.head, m.to);
        }
    }

    /** Queues the cheapest move of one head to a sparser candidate, if there is one. */
    private static void offer(PriorityQueue<Move> moves, ErrorTable table, long[] pairs, int i, int l, int h, int from) {
        int best = -1;
        double bestCost = Double.POSITIVE_INFINITY;
        for (int c = 0; c < pairs.length; c++) {
            if (pairs[c] < pairs[from]) {
                double cost = (table.error(i, l, h, c) - table.error(i, l, h, from)) / (pairs[from] - pairs[c]);
                if (cost < bestCost || (cost == bestCost && pairs[c] < pairs[best])) {
                    best = c;
                    bestCost = cost;
                }
            }
        }
        if (best >= 0) {
            moves.add(new Move(bestCost, i, l, h, from, best));
        }
    }

    @Override
    public String describe() {
        StringBuilder s = new StringBuilder("tileattn's rule: ");
        if (budget.isPresent()) {
            s.append("per head the sparsest candidate with error <= ").append(budget.getAsDouble()).append(" (else the full window)");
        } else {
            s.append("every head starts at the full window");
        }
        if (targetSparsity.isPresent()) {
            s.append(", then the moves costing the least error per pair saved until sparsity >= ").append(targetSparsity.getAsDouble());
        }
        return s.toString();
    }
}
