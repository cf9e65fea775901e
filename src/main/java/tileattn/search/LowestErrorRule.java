package tileattn.search;

/**
 * The STA authors' rule: every head takes the candidate with the lowest error (ties: the sparser, then the
 * earlier in the list); the candidates are meant to be of similar sparsity, so no budget is involved.
 */
public record LowestErrorRule() implements SelectionRule {

    @Override
    public Selection select(ErrorTable table, StepPlan plan) {
        long[] pairs = table.candidatePairs();
        int n = table.candidates().size();
        int[][][] chosen = new int[table.steps().length][table.layers()][table.heads()];
        for (int i = 0; i < chosen.length; i++) {
            for (int l = 0; l < table.layers(); l++) {
                for (int h = 0; h < table.heads(); h++) {
                    int best = 0;
                    for (int c = 1; c < n; c++) {
                        double e = table.error(i, l, h, c), b = table.error(i, l, h, best);
                        if (e < b || (e == b && pairs[c] < pairs[best])) {
                            best = c;
                        }
                    }
                    chosen[i][l][h] = best;
                }
            }
        }
        return new Selection(table, plan, chosen, describe());
    }

    @Override
    public String describe() {
        return "STA authors' rule: per head the candidate with the lowest error";
    }
}
