package tileattn.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.api.Attention;
import tileattn.api.AttentionSpec;
import tileattn.blas.CublasLtUnavailableException;
import tileattn.example.LocalityExample;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** Dense, STA and VSA side by side on the built-in example with spatial-temporal locality. */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Runs dense, STA and VSA attention on a built-in example and compares them.",
            "Sliding Tile Attention runs with several windows and Video Sparse Attention with several top-k on an",
            "example whose q and k are smooth random fields over the video, so attention is local as in a trained",
            "video DiT. Prints time, sparsity and relative L2 error against dense attention.",
            "With a usable GPU (--device auto, the default) every row runs on it in bf16, on a larger example, and",
            "the time is the kernels' alone (VSA: pooling, coarse attention, top-k, fine attention, combine). On a GPU",
            "the demo then runs one step of a small Wan-2.1-shaped DiT with each attention against the CPU model."},
        footer = {"", "Sparsity: the fraction of video query-key pairs skipped (STA, real tokens counted) or of KV",
            "tiles skipped by the fine attention (VSA). VSA runs with gate 0, i.e. its fine attention alone, as with",
            "the zero-initialised gate of an untrained Wan block; a gate of ones would add the coarse output on top."})
final class DemoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    static final Shape3 CPU_VIDEO = new Shape3(12, 24, 24);
    static final Shape3 GPU_VIDEO = new Shape3(12, 48, 64);

    @Option(names = "--video", paramLabel = "T,H,W", converter = Shape3Converter.class,
            description = "Video shape in tokens (default 12,24,24 on the CPU, 12,48,64 on the GPU).")
    Shape3 video;

    @Option(names = "--heads", description = "Attention heads (default 3 on the CPU, 4 on the GPU).")
    Integer heads;

    @Option(names = "--head-dim", description = "Head dimension d (default 64 on the CPU, 128 on the GPU; the GPU "
            + "takes 64 or 128).")
    Integer headDim;

    @Option(names = "--text-length", defaultValue = "0", paramLabel = "L",
            description = "Text tokens after the video, for dense and STA (default ${DEFAULT-VALUE}).")
    int textLength;

    @Option(names = "--sta-tile", paramLabel = "t,h,w", converter = Shape3Converter.class,
            description = "STA tile in tokens (default 4,6,6 on the CPU, 6,8,8 on the GPU).")
    Shape3 staTile;

    @Option(names = "--window", paramLabel = "a,b,c", converter = WindowConverter.class,
            description = "STA window in tiles; repeat for several (default 3,3,3 1,3,3 1,1,1, "
                    + "each capped at the grid).")
    List<Window> windows;

    @Option(names = "--vsa-tile", paramLabel = "t,h,w", converter = Shape3Converter.class, defaultValue = "4,4,4",
            description = "VSA pooling tile in tokens (default ${DEFAULT-VALUE}).")
    Shape3 vsaTile;

    @Option(names = "--topk", paramLabel = "K",
            description = "VSA KV tiles per query tile; repeat for several (default: 25% and 8% of the tiles).")
    List<Integer> topKs;

    @Option(names = "--seed", defaultValue = "1", description = "Seed of the example (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--dit", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "On a GPU, also run one step of a small Wan-2.1-shaped DiT with each attention and compare it "
                    + "with the CPU model (default on; --no-dit skips it).")
    boolean dit;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() {
        DeviceOption.Backend backend = headDim != null && headDim != 64 && headDim != 128
                ? device.resolveCpuOnly("the GPU kernels take head dim 64 or 128, not " + headDim)
                : device.resolve();
        boolean gpu = backend == DeviceOption.Backend.GPU;
        Shape3 videoShape = video != null ? video : gpu ? GPU_VIDEO : CPU_VIDEO;
        int headCount = heads != null ? heads : gpu ? 4 : 3;
        int d = headDim != null ? headDim : gpu ? 128 : 64;
        Shape3 tile = staTile != null ? staTile : gpu ? new Shape3(6, 8, 8) : new Shape3(4, 6, 6);
        if (headCount < 1 || d < 1 || textLength < 0) {
            throw new ParameterException(spec.commandLine(), "--heads and --head-dim must be >= 1 and --text-length >= 0");
        }
        PrintWriter out = spec.commandLine().getOut();
        TokenLayout staLayout = TokenLayout.of(videoShape, tile, textLength);
        TileGrid vsaGrid = new TileGrid(videoShape, vsaTile);
        List<Window> staWindows = windows != null ? windows
                : DefaultWindows.capped(staLayout.grid(), new int[]{3, 3, 3}, new int[]{1, 3, 3}, new int[]{1, 1, 1});
        List<Integer> vsaTopKs = topKs != null ? topKs : defaultTopKs(vsaGrid.tileCount());

        try (GpuDemoRunner gpuRunner = gpu ? new GpuDemoRunner() : null) {
            if (gpu) {
                out.printf("device: GPU (%s), kernel time by CUDA events (median of %d)%n", gpuRunner.describe(),
                        GpuDemoRunner.TIMED);
            } else {
                out.println("device: " + device.note());
            }
            out.printf("example: video %s + %d text tokens = %d tokens, %d heads, d=%d, seed %d (smooth random fields:"
                    + " attention is local)%s%n", videoShape, textLength, staLayout.sequenceLength(), headCount, d, seed,
                    gpu && video == null ? "; the larger GPU default, --video to change" : "");
            out.printf("STA: %s; VSA: %s%n", staLayout.grid(), vsaGrid);
            out.flush();
            table(out, gpuRunner, videoShape, headCount, d, staLayout, vsaGrid, staWindows, vsaTopKs);
        }
        if (textLength != 0) {
            out.println("VSA rows use the same example without text tokens (VSA has none) and compare with dense on it.");
        }
        out.flush();
        if (gpu && dit) {
            out.println();
            try {
                GpuDitDemo.run(out, seed);
            } catch (CublasLtUnavailableException e) {
                out.println("DiT step skipped: " + e.getMessage());
            }
        }
        out.flush();
        return 0;
    }

    private void table(PrintWriter out, GpuDemoRunner gpuRunner, Shape3 videoShape, int headCount, int d,
                       TokenLayout staLayout, TileGrid vsaGrid, List<Window> staWindows, List<Integer> vsaTopKs) {
        LocalityExample withText = LocalityExample.generate(videoShape, textLength, 1, headCount, d, seed);
        LocalityExample videoOnly = textLength == 0 ? withText
                : LocalityExample.generate(videoShape, 0, 1, headCount, d, seed);
        // A zero gate drops the coarse branch, as an untrained (zero-initialised) gate does in Wan; with a gate of
        // ones the coarse output would be added on top of a fine output that already approximates dense attention.
        FloatTensor zeroGate = FloatTensor.zeros(videoOnly.q().shape());
        Attention attention = Attention.cpu();
        warmUp(attention, d);
        String denseDevice = gpuRunner != null ? "gpu" : "cpu";

        TextTable table = new TextTable("method", "setting", "device", "time ms", "sparsity", "rel L2 err vs dense");
        int steps = 2 + staWindows.size() + vsaTopKs.size();
        try (ProgressBar progress = new ProgressBar(steps)) {
            progress.label("dense");
            Measure.Timed<FloatTensor> dense = run(gpuRunner, attention, withText, AttentionSpec.dense());
            progress.step();
            table.add("dense", "all " + staLayout.sequenceLength() + " keys", denseDevice, ms(dense.millis()), "0.0%",
                    "0");
            for (Window w : staWindows) {
                progress.label("sta " + w);
                Measure.Timed<FloatTensor> r = run(gpuRunner, attention, withText, AttentionSpec.Sta.of(staLayout, w));
                progress.step();
                table.add("sta", "window " + w + " tiles", denseDevice, ms(r.millis()),
                        percent(StaMask.sparsity(staLayout.grid(), w)), error(r.value(), dense.value()));
            }
            FloatTensor denseVideo = dense.value();
            if (textLength != 0) {
                progress.label("dense (video only, for VSA)");
                denseVideo = run(gpuRunner, attention, videoOnly, AttentionSpec.dense()).value();
            }
            progress.step();
            for (int k : vsaTopKs) {
                progress.label("vsa top-" + k);
                AttentionSpec.Vsa vsa = AttentionSpec.Vsa.topK(vsaGrid, k).withGate(zeroGate);
                Measure.Timed<FloatTensor> r = gpuRunner != null ? gpuRunner.runVsa(videoOnly, vsaGrid, k)
                        : Measure.time(() -> attention.attend(videoOnly.q(), videoOnly.k(), videoOnly.v(), vsa));
                progress.step();
                table.add("vsa", "top-" + k + " of " + vsaGrid.tileCount() + " tiles, gate 0", denseDevice, ms(r.millis()),
                        percent(1 - (double) k / vsaGrid.tileCount()), error(r.value(), denseVideo));
            }
        }
        table.print(out);
    }

    /** Dense or STA on the GPU when there is one, else timed on the CPU. */
    private static Measure.Timed<FloatTensor> run(GpuDemoRunner gpuRunner, Attention cpu, LocalityExample ex,
                                                  AttentionSpec spec) {
        if (gpuRunner != null) {
            return gpuRunner.run(ex, spec);
        }
        return Measure.time(() -> cpu.attend(ex.q(), ex.k(), ex.v(), spec));
    }

    static List<Integer> defaultTopKs(int tiles) {
        List<Integer> list = new ArrayList<>();
        for (double s : new double[]{0.75, 0.92}) {
            int k = AttentionSpec.Vsa.topKForSparsity(tiles, s);
            if (!list.contains(k)) {
                list.add(k);
            }
        }
        return list;
    }

    /**
     * Runs every method a few times on a small input with the demo's head dimension, so the JIT has compiled the
     * kernels' hot loops before the timed runs.
     */
    private static void warmUp(Attention attention, int headDim) {
        Shape3 small = new Shape3(4, 16, 16);
        Shape3 tile = new Shape3(2, 8, 8);
        LocalityExample ex = LocalityExample.generate(small, 8, 1, 1, headDim, 0);
        LocalityExample videoOnly = LocalityExample.generate(small, 0, 1, 1, headDim, 0);
        TokenLayout layout = TokenLayout.of(small, tile, 8);
        for (int i = 0; i < 5; i++) {
            attention.attend(ex.q(), ex.k(), ex.v(), AttentionSpec.dense());
            attention.attend(ex.q(), ex.k(), ex.v(), AttentionSpec.Sta.of(layout, new Window(1, 1, 1)));
            attention.attend(videoOnly.q(), videoOnly.k(), videoOnly.v(),
                    AttentionSpec.Vsa.topK(new TileGrid(small, tile), 2));
        }
    }

    private static String ms(double millis) {
        return String.format(millis < 10 ? "%.2f" : "%.1f", millis);
    }

    private static String percent(double fraction) {
        return String.format("%.1f%%", 100 * fraction);
    }

    private static String error(FloatTensor actual, FloatTensor dense) {
        return String.format("%.2e", Measure.relativeL2(actual, dense));
    }
}
