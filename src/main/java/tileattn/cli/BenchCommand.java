package tileattn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
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
        description = {
            "Times Java dense attention against numpy, and STA at several sparsities, on the CPU.",
            "numpy computes softmax(QK^T)V with BLAS matmuls per head (run by python3) on the same inputs in the",
            "same run. Reports median milliseconds, GFLOP/s = 4*heads*S*(attended keys per query)*d / time, and",
            "ratios."})
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
            description = "Timed runs per case after one warm-up run; the median is reported (default ${DEFAULT-VALUE}).")
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
        out.printf("inputs: built-in locality example, batch 1, %d heads, d=%d, fp32; median of %d runs after a "
                + "warm-up%n%n", heads, headDim, repeat);
        out.flush();

        Attention attention = Attention.cpu();
        Path work = Files.createTempDirectory("tileattn-bench");
        try (ProgressBar progress = new ProgressBar(videos.size() * (repeat + 1) * (noNumpy ? 1 : 2)
                + sweep.size() * (repeat + 1))) {
            NumpyBaseline numpy = null;
            String numpyProblem = null;
            String numpyVersion = null;
            if (!noNumpy) {
                numpy = NumpyBaseline.prepare(python, numpyScript, work);
            }
            TextTable dense = new TextTable("video", "tokens", "java ms", "java GFLOP/s", "numpy ms",
                    "numpy GFLOP/s", "java speed / numpy", "rel L2 java vs numpy");
            double sweepDenseMillis = Double.NaN;
            for (Shape3 video : videos) {
                LocalityExample ex = LocalityExample.generate(video, 0, 1, heads, headDim, 1);
                int s = video.volume();
                double flops = Measure.flops(heads, s, s, headDim);
                progress.label("java dense " + video);
                Timing java = timeRepeated(progress, () -> attention.attend(ex.q(), ex.k(), ex.v(),
                        AttentionSpec.dense()));
                if (video.equals(sweepVideo)) {
                    sweepDenseMillis = java.millis;
                }
                String numpyMs = "n/a", numpyRate = "n/a", ratio = "n/a", diff = "n/a";
                if (numpy != null && numpyProblem == null) {
                    progress.label("numpy dense " + video);
                    try {
                        Path in = work.resolve("in-" + s + ".safetensors");
                        Path numpyOut = work.resolve("numpy-out-" + s + ".safetensors");
                        SafetensorsWriter.write(in, List.of(new NamedTensor("q", ex.q(), DType.F32),
                                new NamedTensor("k", ex.k(), DType.F32), new NamedTensor("v", ex.v(), DType.F32)));
                        NumpyBaseline.Result r = numpy.run(in, repeat, numpyOut);
                        numpyVersion = r.numpyVersion();
                        FloatTensor numpyResult;
                        try (SafetensorsFile f = SafetensorsFile.open(numpyOut)) {
                            numpyResult = f.read("out");
                        }
                        numpyMs = fmt(r.medianMillis());
                        numpyRate = fmt(flops / r.medianMillis() / 1e6);
                        ratio = String.format("%.2fx", r.medianMillis() / java.millis);
                        diff = String.format("%.1e", Measure.relativeL2(java.result, numpyResult));
                    } catch (IOException e) {
                        numpyProblem = e.getMessage();
                    }
                    for (int i = 0; i <= repeat; i++) {
                        progress.step();
                    }
                }
                dense.add(video.toString(), s, fmt(java.millis), fmt(flops / java.millis / 1e6), numpyMs, numpyRate,
                        ratio, diff);
            }

            LocalityExample ex = LocalityExample.generate(sweepVideo, 0, 1, heads, headDim, 1);
            if (Double.isNaN(sweepDenseMillis)) {
                progress.label("java dense " + sweepVideo);
                sweepDenseMillis = timeRepeated(progress, () -> attention.attend(ex.q(), ex.k(), ex.v(),
                        AttentionSpec.dense())).millis;
            }
            TokenLayout layout = new TokenLayout(grid, 0);
            TextTable sta = new TextTable("window (tiles)", "sparsity", "java ms", "effective GFLOP/s",
                    "speed-up vs java dense", "ideal speed-up");
            for (Window w : sweep) {
                progress.label("java sta " + w);
                double sparsity = StaMask.sparsity(grid, w);
                Timing t = timeRepeated(progress, () -> attention.attend(ex.q(), ex.k(), ex.v(),
                        AttentionSpec.Sta.of(layout, w)));
                int s = sweepVideo.volume();
                double flops = Measure.flops(heads, s, (1 - sparsity) * s, headDim);
                sta.add(w.toString(), String.format("%.1f%%", 100 * sparsity), fmt(t.millis),
                        fmt(flops / t.millis / 1e6), String.format("%.2fx", sweepDenseMillis / t.millis),
                        String.format("%.2fx", 1 / (1 - sparsity)));
            }
            progress.close();
            out.println("Dense attention, Java (tileattn CPU) vs numpy:");
            print(dense, out);
            if (numpyProblem != null) {
                out.println("numpy baseline unavailable: " + numpyProblem);
            } else if (numpyVersion != null) {
                out.println("numpy " + numpyVersion + " run by " + python);
            } else if (numpy == null) {
                out.println("numpy baseline skipped (--no-numpy)");
            }
            out.printf("%nSTA, %s (java dense: %s ms):%n", grid, fmt(sweepDenseMillis));
            print(sta, out);
        } finally {
            deleteTree(work);
        }
        return 0;
    }

    private void print(TextTable table, PrintWriter out) {
        if (markdown) {
            table.printMarkdown(out);
        } else {
            table.print(out);
        }
    }

    /** The median time of {@code repeat} runs after one warm-up, and the last result. */
    private record Timing(double millis, FloatTensor result) {
    }

    private Timing timeRepeated(ProgressBar progress, java.util.function.Supplier<FloatTensor> work) {
        FloatTensor result = work.get();
        progress.step();
        double[] times = new double[repeat];
        for (int i = 0; i < repeat; i++) {
            Measure.Timed<FloatTensor> t = Measure.time(work);
            times[i] = t.millis();
            result = t.value();
            progress.step();
        }
        return new Timing(Measure.median(times), result);
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
