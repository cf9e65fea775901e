package tileattn.search;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalDouble;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.Window;

/**
 * The human-readable result of a search, in Markdown: inputs, rule, predicted speed-up, chosen windows, sparsity
 * and error per layer, and every head's window and error. Also the CSV of every measured error.
 */
public final class SearchReport {

    private SearchReport() {
    }

    /**
     * @param captures what was searched
     * @param backend  where the attention was computed
     * @param budget   the error budget, to count heads over it (empty for rules without one)
     * @param files    names of the files written next to the report, listed at its end
     */
    public static String markdown(Selection sel, CaptureSet captures, String backend, OptionalDouble budget, List<String> files) {
        ErrorTable table = sel.table();
        StepPlan plan = sel.plan();
        WindowStrategy strategy = sel.toStrategy();
        StrategyCost cost = new StrategyCost(strategy);
        TileGrid grid = strategy.grid();
        int[] steps = table.steps();
        int[] weights = plan.weights();
        StringBuilder md = new StringBuilder();
        md.append("# STA window search\n\n");
        md.append("| | |\n|---|---|\n");
        row(md, "inputs", captures.description());
        row(md, "video", dims(grid.video()) + " tokens + " + captures.textLength() + " text tokens; batch " + captures.batch()
                + ", " + captures.heads() + " heads, head dim " + captures.headDim() + ", " + captures.layers() + " layers");
        row(md, "tile", dims(grid.tile()) + " tokens → tile grid " + dims(grid.tiles()) + " (" + grid.tileCount() + " tiles"
                + (grid.tiles().volume() * grid.tile().volume() != grid.videoTokens() ? ", partial edge tiles" : "") + ")");
        row(md, "steps", plan.steps() + " denoising steps; "
                + (plan.fullSteps() == 0 ? "none forced dense" : "steps 0–" + (plan.fullSteps() - 1) + " forced dense")
                + "; searched (captured) steps " + Arrays.toString(steps));
        row(md, "candidates", table.candidates().size() + ": " + String.join(", ", table.candidates().stream().map(Window::toString).toList()));
        row(md, "rule", sel.rule());
        row(md, "measured on", backend);
        md.append('\n');

        int searchedFirst = plan.fullSteps();
        int last = plan.steps() - 1;
        md.append("## Result\n\n");
        md.append(String.format(Locale.ROOT, "- Predicted attention speed-up over the whole run: **%.2f×** "
                + "(dense (query, key) pairs / attended pairs, text tokens included, all %d steps).%n", cost.speedup(), plan.steps()));
        if (searchedFirst <= last) {
            md.append(String.format(Locale.ROOT, "- Steps %d–%d (not forced dense): %.2f× speed-up, %.1f%% of video pairs skipped.%n",
                    searchedFirst, last, cost.speedup(searchedFirst, last), 100 * cost.videoSparsity(searchedFirst, last)));
        }
        double sum = 0, max = -1;
        String maxAt = "";
        int count = 0, over = 0;
        for (int i = 0; i < steps.length; i++) {
            for (int l = 0; l < table.layers(); l++) {
                for (int h = 0; h < table.heads(); h++) {
                    double e = sel.error(i, l, h);
                    sum += e;
                    count++;
                    if (e > max) {
                        max = e;
                        maxAt = "step " + steps[i] + ", layer " + l + ", head " + h;
                    }
                    if (budget.isPresent() && e > budget.getAsDouble()) {
                        over++;
                    }
                }
            }
        }
        md.append(String.format(Locale.ROOT, "- Relative L2 error of the chosen windows against dense attention: mean %.4f, "
                + "max %.4f (%s).%n", sum / count, max, maxAt));
        if (budget.isPresent()) {
            md.append(String.format(Locale.ROOT, "- Heads over the budget %s: %d of %d.%n", num(budget.getAsDouble()), over, count));
        }
        md.append("\nSparsity counts video-video token pairs, as the STA papers do; the speed-up counts all pairs, text "
                + "included, and assumes attention time proportional to the pairs attended.\n\n");

        md.append("### Windows chosen on the searched steps\n\n| window | video sparsity | heads | share |\n|---|---:|---:|---:|\n");
        Map<Window, Integer> uses = new LinkedHashMap<>();
        for (int i = 0; i < steps.length; i++) {
            for (int l = 0; l < table.layers(); l++) {
                for (int h = 0; h < table.heads(); h++) {
                    uses.merge(sel.window(i, l, h), 1, Integer::sum);
                }
            }
        }
        int heads = count;
        uses.entrySet().stream().sorted((a, b) -> Integer.compare(b.getValue(), a.getValue())).forEach(e ->
                md.append(String.format(Locale.ROOT, "| %s | %.1f%% | %d | %.1f%% |%n", e.getKey(),
                        100 * cost.videoSparsity(e.getKey()), e.getValue(), 100.0 * e.getValue() / heads)));
        md.append('\n');

        md.append("## Per layer\n\nOn the searched steps, each weighted by the number of steps that use its windows.\n\n");
        md.append("| layer | video sparsity | speed-up | mean error | max error |\n|---:|---:|---:|---:|---:|\n");
        double densePairs = AttendedPairs.dense(strategy.layout());
        for (int l = 0; l < table.layers(); l++) {
            double sparsity = 0, attended = 0, weight = 0, err = 0, errMax = 0;
            for (int i = 0; i < steps.length; i++) {
                for (int h = 0; h < table.heads(); h++) {
                    Window w = sel.window(i, l, h);
                    sparsity += weights[i] * cost.videoSparsity(w);
                    attended += weights[i] * (double) cost.pairs(w);
                    err += weights[i] * sel.error(i, l, h);
                    errMax = Math.max(errMax, sel.error(i, l, h));
                    weight += weights[i];
                }
            }
            md.append(String.format(Locale.ROOT, "| %d | %.1f%% | %.2f× | %.4f | %.4f |%n", l, 100 * sparsity / weight,
                    densePairs * weight / attended, err / weight, errMax));
        }
        md.append('\n');

        md.append("## Per head\n\nEach cell: chosen window · its relative L2 error.\n\n");
        for (int i = 0; i < steps.length; i++) {
            StepPlanRange range = rangeOf(plan, i);
            md.append("### Step ").append(steps[i]).append(range.first == range.last ? "" : " (used for steps " + range.first + "–" + range.last + ")")
                    .append("\n\n| layer |");
            for (int h = 0; h < table.heads(); h++) {
                md.append(" head ").append(h).append(" |");
            }
            md.append("\n|---:|");
            md.append("---|".repeat(table.heads()));
            md.append('\n');
            for (int l = 0; l < table.layers(); l++) {
                md.append("| ").append(l).append(" |");
                for (int h = 0; h < table.heads(); h++) {
                    md.append(' ').append(sel.window(i, l, h)).append(" · ").append(num(sel.error(i, l, h))).append(" |");
                }
                md.append('\n');
            }
            md.append('\n');
        }
        if (!files.isEmpty()) {
            md.append("## Files\n\n");
            for (String f : files) {
                md.append("- ").append(f).append('\n');
            }
        }
        return md.toString();
    }

    private record StepPlanRange(int first, int last) {
    }

    /** The strategy steps that use the choices of searched step {@code index}. */
    private static StepPlanRange rangeOf(StepPlan plan, int index) {
        int first = -1, last = -1;
        for (int s = 0; s < plan.steps(); s++) {
            if (plan.sourceOf(s) == index) {
                first = first < 0 ? s : first;
                last = s;
            }
        }
        return new StepPlanRange(first, last);
    }

    /** Every measured error: one line per step, layer, head and candidate, with a flag on the chosen one. */
    public static String errorsCsv(Selection sel) {
        ErrorTable table = sel.table();
        long[] pairs = table.candidatePairs();
        StringBuilder csv = new StringBuilder("step,layer,head,window,attended_pairs,relative_l2_error,chosen\n");
        List<Window> candidates = new ArrayList<>(table.candidates());
        for (int i = 0; i < table.steps().length; i++) {
            for (int l = 0; l < table.layers(); l++) {
                for (int h = 0; h < table.heads(); h++) {
                    for (int c = 0; c < candidates.size(); c++) {
                        csv.append(table.steps()[i]).append(',').append(l).append(',').append(h).append(',')
                                .append(candidates.get(c)).append(',').append(pairs[c]).append(',')
                                .append(String.format(Locale.ROOT, "%.6g", table.error(i, l, h, c))).append(',')
                                .append(sel.chosen()[i][l][h] == c ? 1 : 0).append('\n');
                    }
                }
            }
        }
        return csv.toString();
    }

    private static void row(StringBuilder md, String key, String value) {
        md.append("| ").append(key).append(" | ").append(value.replace("|", "\\|")).append(" |\n");
    }

    private static String dims(Shape3 s) {
        return s.t() + "×" + s.h() + "×" + s.w();
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, v != 0 && Math.abs(v) < 1e-3 ? "%.1e" : "%.4f", v);
    }
}
