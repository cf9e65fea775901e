package tileattn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.api.Attention;
import tileattn.api.AttentionSpec;
import tileattn.example.LocalityExample;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;

/** CPU benchmark: Java dense attention against numpy on the same inputs, then STA at several sparsities. */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        subcommands = {BenchGpuCommand.class, BenchWorkloadCommand.class, BenchDitCommand.class},
        description = {
            "Times Java dense attention against numpy, and STA at several sparsities, on the CPU.",
            "numpy computes softmax(QK^T)V with BLAS matmuls per head (run by python3) on the same inputs in the",
            "same run. Reports median milliseconds, GFLOP/s = 4*heads*S*(attended keys per query)*d / time, and",
            "ratios. 'bench gpu' times the GPU kernels instead (see bench gpu --help); 'bench workload' a whole",
            "video generation's attention under an STA strategy on the GPU."})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--video", paramLabel = "T,H,W", converter = Shape3Converter.class, split = ";",
            defaultValue = "8,16,16;12,24,24",
            description = "Video shapes for dense Java vs numpy, ';'-separated or repeated (default ${DEFAULT-VALUE}).")
    List<Shape3> videos;

    @Option(names = "--heads", defaultValue = "2", description = "Heads (default ${DEFAULT-VALUE}).")
    int heads;

    @Option(names = "--head-dim", defaultValue = "64", description = "Head dimension d (default ${DEFAULT-VALUE}).")
    int headDim;

    @Option(names = "--repeat", defaultValue = "3",
            description = "Timed rounds after one warm-up round; every round runs each case once, the median is "
                    + "reported (default ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--sta-video", paramLabel = "T,H,W", converter = Shape3Converter.class,
            description = "Video for the STA sweep (default: the last --video).")
    Shape3 staVideo;

    @Option(names = "--sta-tile", paramLabel = "t,h,w", converter = Shape3Converter.class, defaultValue = "2,8,8",
            description = "STA tile (default ${DEFAULT-VALUE}: 128-token tiles, a 6x3x3 grid on 12x24x24).")
    Shape3 staTile;

    @Option(names = "--window", paramLabel = "a,b,c", converter = WindowConverter.class,
            description = "STA windows to time, repeatable (default: the whole grid, then 3,5,5 3,3,3 1,3,3 1,1,1 "
                    + "capped at the grid).")
    List<Window> windows;

    @Option(names = "--python", defaultValue = "python3", description = "Python with numpy (default ${DEFAULT-VALUE}).")
    String python;

    @Option(names = "--numpy-script", paramLabel = "FILE",
            description = "The numpy baseline script (default: scripts/numpy_dense.py inside the jar).")
    Path numpyScript;

    @Option(names = "--no-numpy", description = "Time Java only.")
    boolean noNumpy;

    @Option(names = "--markdown", description = "Print the tables as markdown.")
    boolean markdown;

    @Override
    public Integer call() throws IOException, InterruptedException {
        if (heads < 1 || headDim < 1 || repeat < 1) {
            throw new ParameterException(spec.commandLine(), "--heads, --head-dim and --repeat must be >= 1");
        }
        PrintWriter out = spec.commandLine().getOut();
        Shape3 sweepVideo = staVideo != null ? staVideo : videos.getLast();
        TileGrid grid = new TileGrid(sweepVideo, staTile);
        List<Window> sweep = windows != null ? windows : DefaultWindows.capped(grid, new int[]{grid.tiles().t(),
                grid.tiles().h(), grid.tiles().w()}, new int[]{3, 5, 5}, new int[]{3, 3, 3}, new int[]{1, 3, 3},
                new int[]{1, 1, 1});
        for (Window w : sweep) {
            w.checkFits(grid.tiles());
        }
        out.printf("machine: %d CPU cores available to the JVM, Java %s, %s %s%n", Runtime.getRuntime()
                .availableProcessors(), Runtime.version(), System.getProperty("os.name"), System.getProperty("os.arch"));
        out.printf("inputs: built-in locality example, batch 1, %d heads, d=%d, fp32; median of %d rounds after a "
                + "warm-up round, the cases of each table interleaved in every round%n%n", heads, headDim, repeat);
        out.flush();

        Attention attention = Attention.cpu();
        Path work = Files.createTempDirectory("tileattn-bench");
        int denseCases = noNumpy ? 1 : 2;
        DenseTable dense;
        StaTable sta;
        try (ProgressBar progress = new ProgressBar((videos.size() * denseCases + 1 + sweep.size()) * (repeat + 1))) {
            dense = denseAgainstNumpy(attention, work, progress);
            sta = staSweep(attention, sweepVideo, grid, sweep, progress);
        } finally {
            deleteTree(work);
        }
        out.println("Dense attention, Java (tileattn CPU) vs numpy:");
        print(dense.table, out);
        out.println(dense.numpyNote);
        out.printf("%nSTA, %s (java dense: %s ms):%n", grid, fmt(sta.denseMillis));
        print(sta.table, out);
        return 0;
    }

    private record DenseTable(TextTable table, String numpyNote) {
    }

    private record StaTable(TextTable table, double denseMillis) {
    }

    private DenseTable denseAgainstNumpy(Attention attention, Path work, ProgressBar progress) throws IOException {
        NumpyBaseline numpy = noNumpy ? null : NumpyBaseline.prepare(python, numpyScript, work);
        String numpyProblem = null;
        TextTable table = new TextTable("video", "tokens", "java ms", "java GFLOP/s", "numpy ms", "numpy GFLOP/s",
                "java speed / numpy", "rel L2 java vs numpy");
        for (Shape3 video : videos) {
            LocalityExample ex = LocalityExample.generate(video, 0, 1, heads, headDim, 1);
            int s = video.volume();
            double flops = Measure.flops(heads, s, s, headDim);
            List<Case> cases = new ArrayList<>();
            Case java = new Case("java dense " + video, () -> attention.attend(ex.q(), ex.k(), ex.v(),
                    AttentionSpec.dense()));
            cases.add(java);
            Case numpyCase = null;
            if (numpy != null && numpyProblem == null) {
                Path in = work.resolve("in-" + s + ".safetensors");
                Path numpyOut = work.resolve("numpy-out-" + s + ".safetensors");
                SafetensorsWriter.write(in, List.of(new NamedTensor("q", ex.q(), DType.F32),
                        new NamedTensor("k", ex.k(), DType.F32), new NamedTensor("v", ex.v(), DType.F32)));
                numpyCase = new Case("numpy dense " + video, () -> numpy.run(in, numpyOut));
                cases.add(numpyCase);
            }
            try {
                roundRobin(cases, progress);
            } catch (IOException e) {
                numpyProblem = e.getMessage();
            }
            boolean numpyTimed = numpyCase != null && numpyProblem == null;
            table.add(video.toString(), s, fmt(java.millis), fmt(flops / java.millis / 1e6),
                    numpyTimed ? fmt(numpyCase.millis) : "n/a",
                    numpyTimed ? fmt(flops / numpyCase.millis / 1e6) : "n/a",
                    numpyTimed ? String.format("%.2fx", numpyCase.millis / java.millis) : "n/a",
                    numpyTimed ? String.format("%.1e", Measure.relativeL2(java.result, numpyCase.result)) : "n/a");
        }
        String note = numpy == null ? "numpy baseline skipped (--no-numpy)"
                : numpyProblem != null ? "numpy baseline unavailable: " + numpyProblem
                : "numpy " + numpy.version() + " run by " + python;
        return new DenseTable(table, note);
    }

    private StaTable staSweep(Attention attention, Shape3 video, TileGrid grid, List<Window> sweep,
                              ProgressBar progress) throws IOException {
        LocalityExample ex = LocalityExample.generate(video, 0, 1, heads, headDim, 1);
        TokenLayout layout = new TokenLayout(grid, 0);
        Case dense = new Case("java dense " + video, () -> attention.attend(ex.q(), ex.k(), ex.v(),
                AttentionSpec.dense()));
        List<Case> cases = new ArrayList<>(List.of(dense));
        for (Window w : sweep) {
            cases.add(new Case("java sta " + w, () -> attention.attend(ex.q(), ex.k(), ex.v(),
                    AttentionSpec.Sta.of(layout, w))));
        }
        roundRobin(cases, progress);
        TextTable table = new TextTable("window (tiles)", "sparsity", "java ms", "effective GFLOP/s",
                "speed-up vs java dense", "ideal speed-up");
        int s = video.volume();
        for (int i = 0; i < sweep.size(); i++) {
            Case c = cases.get(i + 1);
            double sparsity = StaMask.sparsity(grid, sweep.get(i));
            double flops = Measure.flops(heads, s, (1 - sparsity) * s, headDim);
            table.add(sweep.get(i).toString(), String.format("%.1f%%", 100 * sparsity), fmt(c.millis),
                    fmt(flops / c.millis / 1e6), String.format("%.2fx", dense.millis / c.millis),
                    String.format("%.2fx", 1 / (1 - sparsity)));
        }
        return new StaTable(table, dense.millis);
    }

    private void print(TextTable table, PrintWriter out) {
        if (markdown) {
            table.printMarkdown(out);
        } else {
            table.print(out);
        }
    }

    /** Produces a result and the milliseconds its timed part took. */
    @FunctionalInterface
    private interface TimedWork {
        Measure.Timed<FloatTensor> run() throws IOException;
    }

    /** One thing to time; after {@link #roundRobin} holds the median time and the last result. */
    private static final class Case {
        final String label;
        final TimedWork work;
        double millis;
        FloatTensor result;

        Case(String label, java.util.function.Supplier<FloatTensor> work) {
            this(label, (TimedWork) () -> Measure.time(work));
        }

        Case(String label, TimedWork work) {
            this.label = label;
            this.work = work;
        }
    }

    /**
     * One warm-up run of each case, then {@code repeat} rounds that run every case once. Cases compared with each
     * other are thus measured under the same background load, which matters on a shared machine.
     */
    private void roundRobin(List<Case> cases, ProgressBar progress) throws IOException {
        double[][] times = new double[cases.size()][repeat];
        for (int round = -1; round < repeat; round++) {
            for (int c = 0; c < cases.size(); c++) {
                Case one = cases.get(c);
                progress.label(one.label + (round < 0 ? " (warm-up)" : ""));
                Measure.Timed<FloatTensor> t = one.work.run();
                one.result = t.value();
                if (round >= 0) {
                    times[c][round] = t.millis();
                }
                progress.step();
            }
        }
        for (int c = 0; c < cases.size(); c++) {
            cases.get(c).millis = Measure.median(times[c]);
        }
    }

    private static String fmt(double v) {
        return v >= 100 ? String.format("%.0f", v) : String.format("%.1f", v);
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove " + dir, e);
        }
    }
}
