package tileattn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.LongStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.api.GpuBackend;
import tileattn.cpu.CpuAttention;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaDevice;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.kernels.GpuSupport;
import tileattn.kernels.KernelLibrary;
import tileattn.kernels.TileAttentionKernel;
import tileattn.kernels.TileOrderKernel;
import tileattn.layout.TokenLayout;

/** {@code tileattn bench gpu}: dense and STA forward on the GPU at the shapes of HunyuanVideo and Wan-2.1. */
@Command(name = "gpu", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Times tileattn's GPU attention forward (dense and STA) at HunyuanVideo 720p and Wan-2.1 480p shapes.",
            "Inputs: fresh uniform random bf16 (or fp16) tensors in tile order, batch 1, d = 128, tiles 6x8x8; q and k",
            "in [-2, 2), v in [-1, 1). Each kernel path runs warm-ups, then timed runs bracketed by CUDA events; the",
            "median is reported with effective TFLOP/s = 4 * heads * (attended keys summed over queries) * d / time.",
            "Every output is poisoned (NaN) before its first run, scanned for unwritten or non-finite elements after",
            "the last, and sampled rows are compared with a float64 reference. --list shows the cases."})
final class BenchGpuCommand implements Callable<Integer> {

    enum KernelChoice { all, ws, hopper, portable }

    enum Half { bf16, f16 }

    @Spec
    CommandSpec spec;

    @Option(names = "--case", split = ",", paramLabel = "ID",
            description = "Cases to run, comma-separated or repeated (default: all; see --list).")
    List<String> caseIds;

    @Option(names = "--repeat", defaultValue = "10", description = "Timed runs per case and kernel (default ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--warmup", defaultValue = "2", description = "Untimed runs first (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--kernel", defaultValue = "all", paramLabel = "all|ws|hopper|portable",
            description = "Kernel paths: all (portable, plus the two Hopper ones on compute capability 9.0), ws "
                    + "(warp-specialized Hopper), hopper or portable (default ${DEFAULT-VALUE}).")
    KernelChoice kernelChoice;

    @Option(names = "--dtype", defaultValue = "bf16", paramLabel = "bf16|f16", description = "Element type (default ${DEFAULT-VALUE}).")
    Half half;

    @Option(names = "--check-rows", defaultValue = "6", paramLabel = "N",
            description = "Random query rows per checked head compared with float64, besides the edge rows; 0 skips "
                    + "the check (default ${DEFAULT-VALUE}).")
    int checkRows;

    @Option(names = "--tsv", paramLabel = "FILE", description = "Also write the results as tab-separated values.")
    Path tsv;

    @Option(names = "--list", description = "List the cases with their sparsity and FLOPs; needs no GPU.")
    boolean list;

    @Option(names = "--markdown", description = "Print the table as markdown.")
    boolean markdown;

    /** One case timed on one kernel path. */
    record Result(GpuBenchCase benchCase, String path, double medianMillis, double minMillis, double relativeL2,
                  long nonFinite) {
        double teraflops() {
            return benchCase.flops() / medianMillis / 1e9;
        }
    }

    /** Reordering q, k, v into tiles and the output back, for one input shape. */
    record Reorder(String id, String description, double medianMillis) {
    }

    @Override
    public Integer call() throws IOException {
        if (repeat < 1 || warmup < 0 || checkRows < 0) {
            throw new ParameterException(spec.commandLine(), "--repeat must be >= 1, --warmup and --check-rows >= 0");
        }
        List<GpuBenchCase> cases = selectedCases();
        PrintWriter out = spec.commandLine().getOut();
        if (list) {
            printCases(cases, out);
            return 0;
        }
        GpuSupport.whyUnusable().ifPresent(why -> {
            throw new ParameterException(spec.commandLine(), "bench gpu: no usable GPU: " + why);
        });
        List<Result> results = new ArrayList<>();
        List<Reorder> reorders = new ArrayList<>();
        String deviceLine;
        try (CudaContext context = CudaContext.primary(0)) {
            CudaDevice device = context.device();
            List<GpuBackend> backends = backends(context);
            try {
                deviceLine = String.format("device: %s, compute capability %s, %d SMs; %s; %d warm-up + %d timed runs "
                        + "per case and kernel, median", device.name(), device.computeCapability(),
                        device.multiprocessors(), half == Half.bf16 ? "bf16" : "fp16", warmup, repeat);
                out.println(deviceLine);
                out.flush();
                for (List<GpuBenchCase> group : byInputShape(cases)) {
                    measure(context, group, backends, results, reorders, out);
                }
            } finally {
                for (GpuBackend backend : backends) {
                    backend.close();
                }
            }
        }
        TextTable table = new TextTable("case", "what", "kernel", "ms", "min ms", "TFLOP/s", "sparsity",
                "rel L2 (sampled)", "bad elements");
        for (Result r : results) {
            table.add(r.benchCase.id(), r.benchCase.describe(), r.path, fmt(r.medianMillis), fmt(r.minMillis),
                    String.format("%.0f", r.teraflops()), String.format("%.1f%%", 100 * r.benchCase.sparsity()),
                    Double.isNaN(r.relativeL2) ? (checkRows == 0 && r.nonFinite == 0 ? "-" : "FAIL")
                            : String.format("%.1e", r.relativeL2), r.nonFinite);
        }
        out.println();
        if (markdown) {
            table.printMarkdown(out);
        } else {
            table.print(out);
        }
        for (Reorder r : reorders) {
            out.printf("reordering q, k, v into tiles and the output back (4 TileOrderKernel launches), %s: %s ms%n",
                    r.description, fmt(r.medianMillis));
        }
        if (tsv != null) {
            writeTsv(tsv, deviceLine, results, reorders);
            out.println("wrote " + tsv);
        }
        out.flush();
        boolean failed = results.stream().anyMatch(r -> r.nonFinite != 0
                || (checkRows > 0 && !(r.relativeL2 < SAMPLED_TOLERANCE)));
        if (failed) {
            spec.commandLine().getErr().println("error: some outputs failed the check (bad elements, or a sampled "
                    + "relative L2 error >= " + SAMPLED_TOLERANCE + ")");
            return CliErrors.EXIT_BAD_INPUT;
        }
        return 0;
    }

    /** bf16 operands put the relative L2 error near 2e-3 (METHOD.md: between 1e-3 and 1e-2). */
    static final double SAMPLED_TOLERANCE = 1e-2;

    private List<GpuBenchCase> selectedCases() {
        if (caseIds == null) {
            return GpuBenchCase.ALL;
        }
        List<GpuBenchCase> cases = new ArrayList<>();
        for (String id : caseIds) {
            try {
                cases.add(GpuBenchCase.byId(id.strip()));
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), e.getMessage());
            }
        }
        return cases;
    }

    private void printCases(List<GpuBenchCase> cases, PrintWriter out) {
        TextTable table = new TextTable("case", "what", "tokens", "grid", "sparsity", "GFLOP");
        for (GpuBenchCase c : cases) {
            table.add(c.id(), c.describe(), c.sequenceLength(), c.layout().grid().tiles().toString(),
                    String.format("%.1f%%", 100 * c.sparsity()), String.format("%.0f", c.flops() / 1e9));
        }
        if (markdown) {
            table.printMarkdown(out);
        } else {
            table.print(out);
        }
        out.flush();
    }

    private List<GpuBackend> backends(CudaContext context) {
        DType dtype = half == Half.bf16 ? DType.BF16 : DType.F16;
        boolean hopper = context.device().computeCapabilityNumber() == 90;
        List<TileAttentionKernel.Path> paths = switch (kernelChoice) {
            case all -> hopper ? List.of(TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED, TileAttentionKernel.Path.HOPPER,
                    TileAttentionKernel.Path.PORTABLE) : List.of(TileAttentionKernel.Path.PORTABLE);
            case ws -> List.of(TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED);
            case hopper -> List.of(TileAttentionKernel.Path.HOPPER);
            case portable -> List.of(TileAttentionKernel.Path.PORTABLE);
        };
        List<GpuBackend> backends = new ArrayList<>();
        try {
            for (TileAttentionKernel.Path path : paths) {
                backends.add(new GpuBackend(context, dtype, path));
            }
        } catch (IllegalArgumentException e) {
            backends.forEach(GpuBackend::close);
            throw new ParameterException(spec.commandLine(), "--kernel " + kernelChoice + ": " + e.getMessage());
        }
        return backends;
    }

    /** Cases that share q, k, v (same video, heads, d and text), in their listed order. */
    private static List<List<GpuBenchCase>> byInputShape(List<GpuBenchCase> cases) {
        Map<String, List<GpuBenchCase>> groups = new LinkedHashMap<>();
        for (GpuBenchCase c : cases) {
            groups.computeIfAbsent(c.video() + "/" + c.heads() + "/" + c.headDim() + "/" + c.textLength(),
                    key -> new ArrayList<>()).add(c);
        }
        return List.copyOf(groups.values());
    }

    private void measure(CudaContext context, List<GpuBenchCase> group, List<GpuBackend> backends,
                         List<Result> results, List<Reorder> reorders, PrintWriter log) {
        GpuBenchCase first = group.getFirst();
        int[] shape = first.shape();
        DType dtype = backends.getFirst().hostDType();
        long seed = 1 + results.size();
        try (Arena host = Arena.ofShared(); DeviceScope scope = context.openScope()) {
            RandomHalfTensor q = RandomHalfTensor.generate(host, dtype, shape, seed, -2, 2);
            RandomHalfTensor k = RandomHalfTensor.generate(host, dtype, shape, seed + 1000, -2, 2);
            RandomHalfTensor v = RandomHalfTensor.generate(host, dtype, shape, seed + 2000, -1, 1);
            DeviceTensor dq = upload(scope, q), dk = upload(scope, k), dv = upload(scope, v);
            // Copies from pageable memory may still be landing when cuMemcpyHtoD returns; the stream does not wait.
            context.synchronize();
            DeviceTensor o = scope.allocateTensor(dtype, shape);
            MemorySegment hostOut = host.allocate(o.bytes(), 16);
            CudaStream stream = scope.createStream();
            CudaEvent start = scope.createEvent(), end = scope.createEvent();
            float scale = CpuAttention.defaultScale(first.headDim());

            TokenLayout layout = first.layout();
            DeviceTensor scratch = scope.allocateTensor(dtype, shape);
            TileOrderKernel reorder = new TileOrderKernel(KernelLibrary.of(context));
            double reorderMillis = time(start, end, stream, () -> {
                reorder.toTileOrder(dq, scratch, layout, stream);
                reorder.toTileOrder(dk, scratch, layout, stream);
                reorder.toTileOrder(dv, scratch, layout, stream);
                reorder.toRaster(dq, scratch, layout, stream);
            })[0];
            reorders.add(new Reorder("reorder-" + first.video().t() + "x" + first.video().h() + "x" + first.video().w()
                    + "-text" + first.textLength(), first.model() + " " + first.video()
                    + (first.textLength() > 0 ? " + " + first.textLength() + " text" : "") + ", " + first.heads()
                    + " heads", reorderMillis));

            for (GpuBenchCase c : group) {
                SampledRows sampled = checkRows == 0 ? null
                        : new SampledRows(q, k, v, c.layout(), c.window(), scale, checkRows, seed);
                for (GpuBackend backend : backends) {
                    o.buffer().fillAsync((byte) 0xFF, stream);   // NaN in bf16 and fp16
                    double[] millis = time(start, end, stream,
                            () -> backend.attend(dq, dk, dv, o, c.spec(), scale, stream));
                    stream.synchronize();
                    o.buffer().copyToHost(hostOut);
                    long bad = nonFinite(hostOut, dtype);
                    double err = sampled == null ? Double.NaN : sampled.relativeL2(rowsOf(hostOut, dtype, shape, sampled));
                    Result r = new Result(c, pathName(backend.kernelPath()), millis[0], millis[1], err, bad);
                    results.add(r);
                    log.printf("  %-28s %-20s %9s ms  %5.0f TFLOP/s%n", c.id(), r.path, fmt(r.medianMillis),
                            r.teraflops());
                    log.flush();
                }
            }
        }
    }

    private static DeviceTensor upload(DeviceScope scope, RandomHalfTensor t) {
        DeviceTensor d = scope.allocateTensor(t.dtype(), t.shape());
        d.buffer().copyFromHost(t.data());
        return d;
    }

    /** Warm-ups, then timed runs; returns {median, min} in milliseconds. */
    private double[] time(CudaEvent start, CudaEvent end, CudaStream stream, Runnable work) {
        for (int i = 0; i < warmup; i++) {
            work.run();
        }
        double[] millis = new double[repeat];
        for (int i = 0; i < repeat; i++) {
            start.record(stream);
            work.run();
            end.record(stream);
            millis[i] = CudaEvent.elapsedMillis(start, end);
        }
        return new double[]{Measure.median(millis), Arrays.stream(millis).min().orElseThrow()};
    }

    static long nonFinite(MemorySegment data, DType dtype) {
        long n = data.byteSize() / 2;
        long chunk = 1 << 22;
        return LongStream.range(0, (n + chunk - 1) / chunk).parallel().map(c -> {
            long bad = 0;
            for (long i = c * chunk, end = Math.min(n, (c + 1) * chunk); i < end; i++) {
                if (!Float.isFinite(dtype.decodeHalf(data.getAtIndex(ValueLayout.JAVA_SHORT, i)))) {
                    bad++;
                }
            }
            return bad;
        }).sum();
    }

    private static List<float[]> rowsOf(MemorySegment data, DType dtype, int[] shape, SampledRows sampled) {
        List<float[]> rows = new ArrayList<>();
        int d = shape[3];
        for (SampledRows.Row row : sampled.rows()) {
            long base = ((long) row.head() * shape[2] + row.row()) * d;
            float[] values = new float[d];
            for (int c = 0; c < d; c++) {
                values[c] = dtype.decodeHalf(data.getAtIndex(ValueLayout.JAVA_SHORT, base + c));
            }
            rows.add(values);
        }
        return rows;
    }

    static String pathName(TileAttentionKernel.Path path) {
        return switch (path) {
            case HOPPER_WARP_SPECIALIZED -> "warp-specialized wgmma (sm_90a)";
            case HOPPER -> "wgmma (sm_90a)";
            default -> "mma.sync (portable)";
        };
    }

    private void writeTsv(Path file, String deviceLine, List<Result> results, List<Reorder> reorders)
            throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add(String.join("\t", "case", "kernel", "dtype", "ms_median", "ms_min", "tflops", "flops", "sparsity",
                "rel_l2_sampled", "bad_elements", "repeat", "warmup", "description"));
        String dtype = half.name();
        for (Result r : results) {
            lines.add(String.join("\t", r.benchCase.id(), r.path, dtype, num(r.medianMillis), num(r.minMillis),
                    num(r.teraflops()), String.format(Locale.ROOT, "%.6e", r.benchCase.flops()), num(r.benchCase.sparsity()),
                    Double.isNaN(r.relativeL2) ? "" : String.format(Locale.ROOT, "%.3e", r.relativeL2), Long.toString(r.nonFinite),
                    Integer.toString(repeat), Integer.toString(warmup), r.benchCase.describe()));
        }
        for (Reorder r : reorders) {
            lines.add(String.join("\t", r.id, "TileOrderKernel x4", dtype, num(r.medianMillis), "", "", "", "", "", "",
                    Integer.toString(repeat), Integer.toString(warmup), r.description));
        }
        lines.add("# " + deviceLine);
        Files.write(file, lines);
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    private static String fmt(double v) {
        return v >= 100 ? String.format("%.1f", v) : String.format("%.2f", v);
    }
}
