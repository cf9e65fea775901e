package tileattn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.api.AttentionSpec;
import tileattn.api.GpuBackend;
import tileattn.cpu.CpuAttention;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.kernels.GpuSupport;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.search.StrategyFiles;
import tileattn.search.WindowStrategy;
import tileattn.tensor.DType;

/** {@code tileattn bench workload}: the attention time of one whole video generation under an STA strategy. */
@Command(name = "workload", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Estimates the attention time of one whole generation (every denoising step x",
            "layer) under an STA window strategy and under dense attention, on the GPU.",
            "Default: the STA authors' published HunyuanVideo strategy (50 steps x 60",
            "layers x 24 heads), video 30x48x80 in tiles of 6x8x8 + 256 text tokens,",
            "d = 128, batch 2. Every distinct window of the strategy is timed once as a",
            "launch whose heads all use it, and dense attention once; a call under per-head",
            "windows is predicted to take the mean over its heads of t(window) (heads are",
            "independent, equal blocks of work), summed over all steps x layers; dense is",
            "steps x layers x t(dense). The calls mixing the most windows are also timed",
            "as one per-head launch to check the prediction. Inputs: fresh uniform random",
            "bf16 in tile order (q, k in [-2, 2), v in [-1, 1)); CUDA event timing, median",
            "of the timed runs; every output is poisoned (NaN) first and scanned for",
            "non-finite elements after. The paper's figures (HunyuanVideo on an H100 with",
            "FlashAttention-3) are printed beside the estimate."})
final class BenchWorkloadCommand implements Callable<Integer> {

    static final String PUBLISHED = "mask_strategy_hunyuan.json";

    /** Seconds of one HunyuanVideo 720p generation in the STA paper: all, of which attention, and with STA. */
    static final double PAPER_TOTAL_S = 945, PAPER_ATTENTION_S = 800, PAPER_STA_TOTAL_S = 685;

    @Spec
    CommandSpec spec;

    @Option(names = "--strategy", paramLabel = "FILE",
            description = "Strategy file, tileattn's format or the STA authors' (told apart by content). Default: "
                    + PUBLISHED + " beside tileattn.jar, else ../shared/reference/" + PUBLISHED + ".")
    Path strategyFile;

    @Option(names = "--video", paramLabel = "T,H,W", converter = Shape3Converter.class, defaultValue = "30,48,80",
            description = "Video in tokens, for the STA authors' format (default ${DEFAULT-VALUE}); a tileattn file names its own.")
    Shape3 video;

    @Option(names = "--tile", paramLabel = "t,h,w", converter = Shape3Converter.class, defaultValue = "6,8,8",
            description = "Tile in tokens, for the STA authors' format (default ${DEFAULT-VALUE}).")
    Shape3 tile;

    @Option(names = "--text-length", paramLabel = "L", defaultValue = "256",
            description = "Text tokens, for the STA authors' format (default ${DEFAULT-VALUE}).")
    int textLength;

    @Option(names = "--head-dim", defaultValue = "128", description = "Head dimension d, 64 or 128 (default ${DEFAULT-VALUE}).")
    int headDim;

    @Option(names = "--batch", defaultValue = "2",
            description = "Batch of every attention call (default ${DEFAULT-VALUE}: conditional and unconditional, for guidance).")
    int batch;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed runs per launch (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--repeat", defaultValue = "3", description = "Timed runs per launch, median reported (default ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--validate", defaultValue = "3", paramLabel = "N",
            description = "Mixed-window calls timed as one per-head launch to check the prediction (default ${DEFAULT-VALUE}).")
    int validate;

    @Option(names = "--tsv", paramLabel = "FILE", description = "Also write the measurements and totals as tab-separated values.")
    Path tsv;

    @Option(names = "--markdown", description = "Print the tables as markdown.")
    boolean markdown;

    /** A launch's median time and the non-finite elements left in its output. */
    record Timing(double millis, long bad) {
    }

    /** A mixed-window call: predicted from the per-window times, and measured as one per-head launch. */
    record Check(WorkloadEstimate.Call call, int distinctWindows, double predictedMillis, Timing measured) {
    }

    @Override
    public Integer call() throws IOException {
        if (repeat < 1 || warmup < 0 || validate < 0 || batch < 1 || textLength < 0) {
            throw new ParameterException(spec.commandLine(), "--repeat and --batch must be >= 1; --warmup, --validate and "
                    + "--text-length >= 0");
        }
        if (headDim != 64 && headDim != 128) {
            throw new ParameterException(spec.commandLine(), "--head-dim must be 64 or 128 (the GPU kernels' sizes), got " + headDim);
        }
        WindowStrategy strategy = readStrategy();
        GpuSupport.whyUnusable().ifPresent(why -> {
            throw new ParameterException(spec.commandLine(), "bench workload: no usable GPU: " + why);
        });
        WorkloadEstimate estimate = new WorkloadEstimate(strategy);
        TokenLayout layout = strategy.layout();
        int heads = strategy.heads();
        int[] shape = {batch, heads, layout.sequenceLength(), headDim};
        PrintWriter out = spec.commandLine().getOut();

        Map<Window, Timing> windowTimes = new LinkedHashMap<>();
        Timing dense;
        List<Check> checks = new ArrayList<>();
        String deviceLine;
        try (GpuBackend gpu = GpuBackend.open()) {
            CudaContext context = gpu.context();
            deviceLine = String.format(Locale.ROOT, "device: %s; %s; inputs [%d, %d, %d, %d] bf16 in tile order; "
                    + "%d warm-up + %d timed runs per launch, median", gpu.describe(), strategy, shape[0], shape[1],
                    shape[2], shape[3], warmup, repeat);
            out.println(deviceLine);
            out.flush();
            try (Arena host = Arena.ofShared(); DeviceScope scope = context.openScope()) {
                DeviceTensor q = upload(scope, RandomHalfTensor.generate(host, DType.BF16, shape, 91, -2, 2));
                DeviceTensor k = upload(scope, RandomHalfTensor.generate(host, DType.BF16, shape, 92, -2, 2));
                DeviceTensor v = upload(scope, RandomHalfTensor.generate(host, DType.BF16, shape, 93, -1, 1));
                // Copies from pageable memory may still be landing when cuMemcpyHtoD returns; the stream does not wait.
                context.synchronize();
                Launcher launch = new Launcher(gpu, scope, q, k, v);
                for (Window w : estimate.distinctWindows()) {
                    Timing t = launch.time(AttentionSpec.Sta.of(layout, w));
                    windowTimes.put(w, t);
                    out.printf(Locale.ROOT, "  window %-8s %9.2f ms  (%d of the generation's heads)%n", w, t.millis(),
                            estimate.uses(w));
                    out.flush();
                }
                dense = launch.time(AttentionSpec.dense());
                out.printf(Locale.ROOT, "  dense           %9.2f ms%n", dense.millis());
                Map<Window, Double> millis = millisOf(windowTimes);
                for (WorkloadEstimate.Call c : estimate.mixedCalls(validate)) {
                    Window[] windows = strategy.windowsFor(c.step(), c.layer());
                    Timing measured = launch.time(AttentionSpec.Sta.perHead(layout, windows));
                    int distinct = (int) java.util.Arrays.stream(windows).distinct().count();
                    checks.add(new Check(c, distinct, estimate.callMillis(c, millis), measured));
                    out.printf(Locale.ROOT, "  step %d layer %d (%d windows): predicted %.2f ms, measured %.2f ms%n",
                            c.step(), c.layer(), distinct, estimate.callMillis(c, millis), measured.millis());
                    out.flush();
                }
            }
        }
        Map<Window, Double> millis = millisOf(windowTimes);
        double staSeconds = estimate.strategySeconds(millis);
        double denseSeconds = estimate.denseSeconds(dense.millis());
        print(out, strategy, estimate, windowTimes, dense, checks, staSeconds, denseSeconds);
        if (tsv != null) {
            writeTsv(deviceLine, strategy, estimate, windowTimes, dense, checks, staSeconds, denseSeconds);
            out.println("wrote " + tsv);
        }
        out.flush();
        long bad = dense.bad() + windowTimes.values().stream().mapToLong(Timing::bad).sum()
                + checks.stream().mapToLong(c -> c.measured().bad()).sum();
        if (bad != 0) {
            spec.commandLine().getErr().println("error: " + bad + " output elements were unwritten or not finite");
            return CliErrors.EXIT_BAD_INPUT;
        }
        return 0;
    }

    private WindowStrategy readStrategy() throws IOException {
        Path file = strategyFile != null ? strategyFile : defaultStrategy();
        try {
            return StrategyFiles.read(file, TokenLayout.of(video, tile, textLength));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
    }

    private Path defaultStrategy() {
        List<Path> places = new ArrayList<>();
        try {
            Path code = Path.of(BenchWorkloadCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            if (Files.isRegularFile(code)) {
                places.add(code.resolveSibling(PUBLISHED));
            }
        } catch (URISyntaxException | SecurityException | NullPointerException e) {
            // no jar to look beside; the shared folder remains
        }
        places.add(Path.of("..", "shared", "reference", PUBLISHED));
        return places.stream().filter(Files::isRegularFile).findFirst().orElseThrow(() -> new ParameterException(
                spec.commandLine(), "the published strategy is in none of " + places + "; give --strategy FILE"));
    }

    private static DeviceTensor upload(DeviceScope scope, RandomHalfTensor t) {
        DeviceTensor d = scope.allocateTensor(t.dtype(), t.shape());
        d.buffer().copyFromHost(t.data());
        return d;
    }

    /** Times launches on one set of inputs and checks each launch's output. */
    private final class Launcher {
        private final GpuBackend gpu;
        private final DeviceTensor q, k, v, o;
        private final CudaStream stream;
        private final CudaEvent start, end;
        private final MemorySegment hostOut;
        private final float scale;

        Launcher(GpuBackend gpu, DeviceScope scope, DeviceTensor q, DeviceTensor k, DeviceTensor v) {
            this.gpu = gpu;
            this.q = q;
            this.k = k;
            this.v = v;
            this.o = scope.allocateTensor(q.dtype(), q.shape());
            this.stream = scope.createStream();
            this.start = scope.createEvent();
            this.end = scope.createEvent();
            this.hostOut = scope.allocatePinned(o.bytes());
            this.scale = CpuAttention.defaultScale(q.dim(3));
        }

        Timing time(AttentionSpec attention) {
            o.buffer().fillAsync((byte) 0xFF, stream);   // NaN in bf16: an element the kernel leaves is caught below
            for (int i = 0; i < warmup; i++) {
                gpu.attend(q, k, v, o, attention, scale, stream);
            }
            double[] millis = new double[repeat];
            for (int i = 0; i < repeat; i++) {
                start.record(stream);
                gpu.attend(q, k, v, o, attention, scale, stream);
                end.record(stream);
                millis[i] = CudaEvent.elapsedMillis(start, end);
            }
            stream.synchronize();
            o.buffer().copyToHost(hostOut);
            return new Timing(Measure.median(millis), BenchGpuCommand.nonFinite(hostOut, o.dtype()));
        }
    }

    private static Map<Window, Double> millisOf(Map<Window, Timing> times) {
        Map<Window, Double> millis = new LinkedHashMap<>();
        times.forEach((w, t) -> millis.put(w, t.millis()));
        return millis;
    }

    /** The paper's STA attention: its end-to-end saving taken from its dense attention (the rest is unchanged). */
    static double paperStaAttentionSeconds() {
        return PAPER_ATTENTION_S - (PAPER_TOTAL_S - PAPER_STA_TOTAL_S);
    }

    private void print(PrintWriter out, WindowStrategy strategy, WorkloadEstimate estimate, Map<Window, Timing> windows,
                       Timing dense, List<Check> checks, double staSeconds, double denseSeconds) {
        int calls = strategy.steps() * strategy.layers();
        out.println();
        out.println("Launch times (every head with the same window):");
        TextTable launches = new TextTable("window", "ms per call", "heads of the generation", "share of heads",
                "seconds in the generation");
        long allHeads = (long) calls * strategy.heads();
        for (Map.Entry<Window, Timing> e : windows.entrySet()) {
            int uses = estimate.uses(e.getKey());
            launches.add(e.getKey() + (e.getKey().equals(Window.full(strategy.grid().tiles())) ? " (full)" : ""),
                    fmt(e.getValue().millis()), uses, pct((double) uses / allHeads),
                    fmt(uses * e.getValue().millis() / strategy.heads() / 1000));
        }
        launches.add("dense", fmt(dense.millis()), "-", "-", "-");
        show(launches, out);
        if (!checks.isEmpty()) {
            out.println();
            out.println("Per-head additivity on the calls that mix the most windows (one per-head launch each):");
            TextTable check = new TextTable("step", "layer", "distinct windows", "predicted ms", "measured ms",
                    "measured / predicted");
            for (Check c : checks) {
                check.add(c.call().step(), c.call().layer(), c.distinctWindows(), fmt(c.predictedMillis()),
                        fmt(c.measured().millis()), String.format(Locale.ROOT, "%.3f", c.measured().millis() / c.predictedMillis()));
            }
            show(check, out);
        }
        double other = PAPER_TOTAL_S - PAPER_ATTENTION_S;
        out.println();
        out.printf(Locale.ROOT, "Attention of one whole generation (%d steps x %d layers = %d calls, batch %d):%n",
                strategy.steps(), strategy.layers(), calls, batch);
        TextTable totals = new TextTable("", "tileattn (this GPU)", "paper (H100: FlashAttention-3 / STA)");
        totals.add("dense attention", seconds(denseSeconds), seconds(PAPER_ATTENTION_S));
        totals.add("STA, this strategy", seconds(staSeconds),
                seconds(paperStaAttentionSeconds()) + " (derived: " + fmt0(PAPER_ATTENTION_S) + " - (" + fmt0(PAPER_TOTAL_S)
                        + " - " + fmt0(PAPER_STA_TOTAL_S) + "))");
        totals.add("attention speed-up", ratio(denseSeconds / staSeconds), ratio(PAPER_ATTENTION_S / paperStaAttentionSeconds()));
        totals.add("generation, with the paper's " + fmt0(other) + " s outside attention",
                seconds(other + denseSeconds) + " -> " + seconds(other + staSeconds),
                seconds(PAPER_TOTAL_S) + " -> " + seconds(PAPER_STA_TOTAL_S));
        show(totals, out);
    }

    private void show(TextTable table, PrintWriter out) {
        if (markdown) {
            table.printMarkdown(out);
        } else {
            table.print(out);
        }
    }

    private void writeTsv(String deviceLine, WindowStrategy strategy, WorkloadEstimate estimate, Map<Window, Timing> windows,
                          Timing dense, List<Check> checks, double staSeconds, double denseSeconds) throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add(String.join("\t", "row", "what", "ms_median", "ms_predicted", "count", "seconds", "bad_elements"));
        for (Map.Entry<Window, Timing> e : windows.entrySet()) {
            int uses = estimate.uses(e.getKey());
            lines.add(String.join("\t", "window", e.getKey().toString(), num(e.getValue().millis()), "", Integer.toString(uses),
                    num(uses * e.getValue().millis() / strategy.heads() / 1000), Long.toString(e.getValue().bad())));
        }
        int calls = strategy.steps() * strategy.layers();
        lines.add(String.join("\t", "dense", "dense", num(dense.millis()), "", Integer.toString(calls), num(denseSeconds),
                Long.toString(dense.bad())));
        for (Check c : checks) {
            lines.add(String.join("\t", "check", "step " + c.call().step() + " layer " + c.call().layer(),
                    num(c.measured().millis()), num(c.predictedMillis()), Integer.toString(c.distinctWindows()), "",
                    Long.toString(c.measured().bad())));
        }
        lines.add(String.join("\t", "total", "dense", "", "", Integer.toString(calls), num(denseSeconds), ""));
        lines.add(String.join("\t", "total", "strategy", "", "", Integer.toString(calls), num(staSeconds), ""));
        lines.add(String.join("\t", "total", "speedup", "", "", "", num(denseSeconds / staSeconds), ""));
        lines.add(String.join("\t", "paper", "dense attention", "", "", "", num(PAPER_ATTENTION_S), ""));
        lines.add(String.join("\t", "paper", "sta attention (derived)", "", "", "", num(paperStaAttentionSeconds()), ""));
        lines.add(String.join("\t", "paper", "generation dense", "", "", "", num(PAPER_TOTAL_S), ""));
        lines.add(String.join("\t", "paper", "generation sta", "", "", "", num(PAPER_STA_TOTAL_S), ""));
        lines.add("# " + deviceLine + "; batch " + batch);
        Files.write(tsv, lines);
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, v >= 100 ? "%.1f" : "%.2f", v);
    }

    private static String fmt0(double v) {
        return String.format(Locale.ROOT, "%.0f", v);
    }

    private static String seconds(double s) {
        return String.format(Locale.ROOT, "%.0f s", s);
    }

    private static String ratio(double r) {
        return String.format(Locale.ROOT, "%.2fx", r);
    }

    private static String pct(double share) {
        return String.format(Locale.ROOT, "%.1f%%", 100 * share);
    }
}
