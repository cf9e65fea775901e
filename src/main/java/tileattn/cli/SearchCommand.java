package tileattn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalDouble;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.api.AttentionBackend;
import tileattn.api.CpuBackend;
import tileattn.api.GpuBackend;
import tileattn.cpu.VectorOpsProvider;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.search.BudgetRule;
import tileattn.search.CandidateWindows;
import tileattn.search.CaptureFolder;
import tileattn.search.CaptureSet;
import tileattn.search.ErrorTable;
import tileattn.search.ExampleCaptures;
import tileattn.search.LowestErrorRule;
import tileattn.search.SearchReport;
import tileattn.search.Selection;
import tileattn.search.SelectionRule;
import tileattn.search.StaAuthorsJson;
import tileattn.search.StepPlan;
import tileattn.search.StrategyCost;
import tileattn.search.StrategyFiles;
import tileattn.search.StrategyJson;
import tileattn.search.StrategyPictures;
import tileattn.search.WindowSearch;
import tileattn.search.WindowStrategy;

/** Searches STA windows per layer and head on captured attention inputs (or the built-in example). */
@Command(name = "search", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Chooses an STA window for every denoising step, layer and head, training-free:",
            "each candidate window's output is compared with dense attention on captured",
            "q, k, v (relative L2 error), and a rule picks one window per head. Writes",
            "strategy.json (for attend --windows and the Java API), report.md, errors.csv",
            "and PNG pictures."},
        footer = {"",
            "Captures: one .safetensors file per (step, layer) holding q, k, v [batch, heads,",
            "T*H*W + L, d] in raster order, with metadata 'step', 'layer', 'video' (\"T,H,W\")",
            "and 'text_length'; docs/search.md has a PyTorch snippet.",
            "Without --captures the built-in example runs: video 5,12,20 in tiles of 1,2,2",
            "(a 5x6x10 tile grid, like HunyuanVideo's), 8 text tokens, 2 steps x 4 layers",
            "x 6 heads of different locality.",
            "Rule 'ours': per head the sparsest window whose error is within --budget",
            "(default 0.05); with --target-sparsity, the heads that cost the least error",
            "per saved pair then move to sparser windows until the target is met.",
            "Rule 'sta' (the STA authors'): per head the candidate with the lowest error;",
            "default candidates their HunyuanVideo list 5x3x3, 1x6x10, 3x3x5, 5x1x10, 5x6x1.",
            "--device auto computes on the GPU (bf16) when one is usable and the head dim is 64 or 128",
            "(the built-in example's is 32), on the CPU (fp32) otherwise."})
final class SearchCommand implements Callable<Integer> {

    static final Shape3 EXAMPLE_VIDEO = new Shape3(5, 12, 20);
    static final Shape3 EXAMPLE_TILE = new Shape3(1, 2, 2);
    static final int EXAMPLE_TEXT = 8;

    enum Rule { ours, sta }

    @Spec
    CommandSpec spec;

    @Mixin
    DeviceOption device;

    @Option(names = "--captures", paramLabel = "DIR", description = "Folder of captured .safetensors files (default: the built-in example).")
    Path captures;

    @Option(names = "--video", paramLabel = "T,H,W", converter = Shape3Converter.class,
            description = "Video of the built-in example in tokens (default 5,12,20); captures carry their own.")
    Shape3 video;

    @Option(names = "--text-length", paramLabel = "L", description = "Text tokens of the built-in example (default 8).")
    Integer textLength;

    @Option(names = "--tile", paramLabel = "t,h,w", converter = Shape3Converter.class,
            description = "Tile in tokens (default 6,8,8 for captures, 1,2,2 for the example).")
    Shape3 tile;

    @Option(names = "--steps", paramLabel = "N", description = "Denoising steps of the strategy (default: the last captured step + 1).")
    Integer steps;

    @Option(names = "--full-steps", paramLabel = "N", defaultValue = "0",
            description = "Leading steps kept at dense attention and not searched (default 0; the STA authors use 15 of 50).")
    int fullSteps;

    @Option(names = "--candidates", paramLabel = "LIST",
            description = "Windows to try, TxHxW in tiles, e.g. 3x3x3,5x6x1 (default: every window the grid allows for 'ours').")
    String candidates;

    @Option(names = "--rule", paramLabel = "ours|sta", defaultValue = "ours", description = "Selection rule (default ours).")
    Rule rule;

    @Option(names = "--budget", paramLabel = "e", description = "Rule 'ours': largest relative L2 error per head (default 0.05 unless --target-sparsity).")
    Double budget;

    @Option(names = "--target-sparsity", paramLabel = "s", description = "Rule 'ours': overall share of pairs to skip on the searched steps, in [0, 1).")
    Double target;

    @Option(names = "--authors-format", description = "Also write strategy_sta.json in the STA authors' \"step_layer_head\" format.")
    boolean authorsFormat;

    @Option(names = "--show", paramLabel = "FILE.json",
            description = "Instead of searching, draw an existing strategy (either format) and write it as strategy.json; "
                    + "for the STA authors' format give --video, --tile and --text-length.")
    Path show;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Folder for the results (created if missing).")
    Path out;

    @Override
    public Integer call() throws IOException {
        if (show != null) {
            return showStrategy();
        }
        checkOptions();
        CaptureSet set = captures != null ? CaptureFolder.open(captures)
                : ExampleCaptures.create(video != null ? video : EXAMPLE_VIDEO, textLength != null ? textLength : EXAMPLE_TEXT,
                        2, 4, 6, 32, 20251123L);
        Shape3 tileShape = tile != null ? tile : captures != null ? AttendCommand.STA_TILE : EXAMPLE_TILE;
        TileGrid grid = new TileGrid(set.video(), tileShape);
        List<Window> windows = candidateList(grid.tiles());
        int[] captured = set.steps();
        int totalSteps = steps != null ? steps : captured[captured.length - 1] + 1;
        StepPlan plan = StepPlan.forCaptured(totalSteps, fullSteps, captured);
        if (plan.searchedSteps().length == 0) {
            throw new ParameterException(spec.commandLine(), "--full-steps " + fullSteps + " makes every one of the "
                    + totalSteps + " steps dense: there is nothing to search");
        }
        SelectionRule selectionRule = rule == Rule.sta ? new LowestErrorRule()
                : new BudgetRule(budgetOrDefault(), target == null ? OptionalDouble.empty() : OptionalDouble.of(target));
        Files.createDirectories(out);

        boolean gpuHeadDim = set.headDim() == 64 || set.headDim() == 128;
        DeviceOption.Backend chosen = gpuHeadDim ? device.resolve()
                : device.resolveCpuOnly("the GPU kernels take head dim 64 or 128, these inputs have " + set.headDim());
        GpuBackend gpu = chosen == DeviceOption.Backend.GPU ? GpuBackend.open() : null;
        AttentionBackend backend = gpu != null ? gpu : new CpuBackend();
        String where = gpu != null ? "gpu (" + gpu.describe() + ")"
                : backend.name() + " (fp32, " + Runtime.getRuntime().availableProcessors() + " cores, "
                        + VectorOpsProvider.get().name() + "; " + device.note() + ")";
        long started = System.nanoTime();
        ErrorTable table;
        try (BarProgress progress = new BarProgress()) {
            table = new WindowSearch(backend).measure(set, tileShape, windows, plan, progress);
        } finally {
            if (gpu != null) {
                gpu.close();
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        Selection selection = selectionRule.select(table, plan);
        WindowStrategy strategy = selection.toStrategy();

        List<String> written = new ArrayList<>();
        StrategyJson.write(strategy, out.resolve("strategy.json"));
        written.add("strategy.json (tileattn format; attend --windows, WindowStrategy in Java)");
        if (authorsFormat) {
            StaAuthorsJson.write(strategy, out.resolve("strategy_sta.json"));
            written.add("strategy_sta.json (STA authors' \"step_layer_head\" format)");
        }
        Files.writeString(out.resolve("errors.csv"), SearchReport.errorsCsv(selection));
        written.add("errors.csv (every measured error)");
        int first = plan.fullSteps(), last = plan.steps() - 1;
        StrategyPictures.windowVolume(strategy, first, last).write(out.resolve("window_volume.png"));
        StrategyPictures.error(selection, budgetOrDefault()).write(out.resolve("error.png"));
        StrategyPictures.windows(strategy, first, last).write(out.resolve("windows.png"));
        written.add("window_volume.png, error.png, windows.png (pictures)");
        Files.writeString(out.resolve("report.md"), SearchReport.markdown(selection, set, where,
                rule == Rule.ours ? budgetOrDefault() : OptionalDouble.empty(), written));

        PrintWriter o = spec.commandLine().getOut();
        o.printf(Locale.ROOT, "searched %d steps x %d layers x %d heads, %d candidate windows, on %s in %.1f s%n",
                plan.searchedSteps().length, set.layers(), set.heads(), windows.size(), where, seconds);
        o.println(selection.rule());
        o.printf(Locale.ROOT, "predicted attention speed-up %.2fx over %d steps (text included); chosen windows: %s%n",
                new StrategyCost(strategy).speedup(), plan.steps(), topWindows(strategy));
        o.println("wrote strategy.json, " + (authorsFormat ? "strategy_sta.json, " : "")
                + "report.md, errors.csv, window_volume.png, error.png, windows.png to " + out);
        o.flush();
        return 0;
    }

    /** Pictures, both file formats and a summary of a strategy file, with no search. */
    private int showStrategy() throws IOException {
        if (captures != null || candidates != null || budget != null || target != null || steps != null || fullSteps != 0
                || rule != Rule.ours) {
            throw new ParameterException(spec.commandLine(), "--show draws a strategy file; it takes --video, --tile, "
                    + "--text-length, --authors-format and --out only");
        }
        StrategyFiles.Parsed parsed = StrategyFiles.parse(show);
        TokenLayout own = parsed.ownLayout().orElse(null);
        if (own == null && video == null) {
            throw new ParameterException(spec.commandLine(), show + " does not name its video; give --video T,H,W (and --tile, "
                    + "--text-length) for the STA authors' format");
        }
        TokenLayout layout = own != null && video == null && tile == null && textLength == null ? own
                : TokenLayout.of(video != null ? video : own.grid().video(),
                        tile != null ? tile : own != null ? own.grid().tile() : AttendCommand.STA_TILE,
                        textLength != null ? textLength : own != null ? own.textLength() : 0);
        WindowStrategy strategy = parsed.strategy(layout);
        if (own != null && !own.equals(layout)) {
            strategy.checkFits(layout.grid().tiles());
            strategy = new WindowStrategy(layout, allWindows(strategy));
        }
        Files.createDirectories(out);
        StrategyJson.write(strategy, out.resolve("strategy.json"));
        if (authorsFormat) {
            StaAuthorsJson.write(strategy, out.resolve("strategy_sta.json"));
        }
        int first = 0;
        while (first < strategy.steps() - 1 && strategy.isFull(first)) {
            first++;
        }
        int last = strategy.steps() - 1;
        StrategyPictures.windowVolume(strategy, first, last).write(out.resolve("window_volume.png"));
        StrategyPictures.windows(strategy, first, last).write(out.resolve("windows.png"));
        StrategyCost cost = new StrategyCost(strategy);
        PrintWriter o = spec.commandLine().getOut();
        o.println(strategy + "; " + strategy.stepRanges().size() + " step ranges");
        if (first > 0) {
            o.println("steps 0-" + (first - 1) + " dense");
        }
        o.printf(Locale.ROOT, "predicted attention speed-up %.2fx over all %d steps, %.2fx over steps %d-%d (%.1f%% of video "
                + "pairs skipped there; text included in the speed-up)%n", cost.speedup(), strategy.steps(),
                cost.speedup(first, last), first, last, 100 * cost.videoSparsity(first, last));
        o.println("windows: " + topWindows(strategy));
        o.println("wrote strategy.json, " + (authorsFormat ? "strategy_sta.json, " : "") + "window_volume.png, windows.png to " + out);
        o.flush();
        return 0;
    }

    private static Window[][][] allWindows(WindowStrategy s) {
        Window[][][] w = new Window[s.steps()][s.layers()][];
        for (int step = 0; step < s.steps(); step++) {
            for (int l = 0; l < s.layers(); l++) {
                w[step][l] = s.windowsFor(step, l);
            }
        }
        return w;
    }

    private void checkOptions() {
        if (captures != null && (video != null || textLength != null)) {
            throw new ParameterException(spec.commandLine(), "--video and --text-length describe the built-in example; "
                    + "captures carry their own in their metadata");
        }
        if (rule == Rule.sta && (budget != null || target != null)) {
            throw new ParameterException(spec.commandLine(), "--budget and --target-sparsity belong to --rule ours; "
                    + "the STA authors' rule takes the lowest error per head");
        }
        if (fullSteps < 0) {
            throw new ParameterException(spec.commandLine(), "--full-steps must be >= 0, got " + fullSteps);
        }
        if (steps != null && steps < 1) {
            throw new ParameterException(spec.commandLine(), "--steps must be >= 1, got " + steps);
        }
        if (textLength != null && textLength < 0) {
            throw new ParameterException(spec.commandLine(), "--text-length must be >= 0, got " + textLength);
        }
    }

    private OptionalDouble budgetOrDefault() {
        if (rule == Rule.sta) {
            return OptionalDouble.empty();
        }
        return budget != null ? OptionalDouble.of(budget) : target != null ? OptionalDouble.empty() : OptionalDouble.of(0.05);
    }

    private List<Window> candidateList(Shape3 grid) {
        List<Window> list;
        if (candidates != null) {
            list = CandidateWindows.parse(candidates, grid);
        } else if (rule == Rule.sta) {
            try {
                list = CandidateWindows.checkAll(CandidateWindows.STA_HUNYUAN, grid);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "the STA authors' HunyuanVideo candidates are for a 5x6x10 "
                        + "tile grid, this one is " + grid + " (" + e.getMessage() + "); give --candidates");
            }
        } else {
            list = CandidateWindows.all(grid);
        }
        return rule == Rule.ours ? CandidateWindows.withFull(list, grid) : list;
    }

    private static String topWindows(WindowStrategy strategy) {
        List<String> parts = new ArrayList<>();
        int total = strategy.steps() * strategy.layers() * strategy.heads();
        strategy.windowCounts().entrySet().stream().limit(5).forEach(e ->
                parts.add(String.format(Locale.ROOT, "%s %.0f%%", e.getKey(), 100.0 * e.getValue() / total)));
        return String.join(", ", parts) + (strategy.windowCounts().size() > 5 ? ", ..." : "");
    }

    /** The CLI's progress bar, one tick per attention computed. */
    private static final class BarProgress implements WindowSearch.Progress, AutoCloseable {
        private ProgressBar bar;

        @Override
        public void start(long units) {
            bar = new ProgressBar((int) Math.min(units, Integer.MAX_VALUE));
        }

        @Override
        public void advance(String doing) {
            bar.label(doing);
            bar.step();
        }

        @Override
        public void close() {
            if (bar != null) {
                bar.close();
            }
        }
    }
}
