package tileattn.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.dit.AttentionSchedule;
import tileattn.dit.FlowMatchSampler;
import tileattn.dit.GpuWanModel;
import tileattn.dit.Matmul;
import tileattn.dit.Noise;
import tileattn.dit.RandomWeights;
import tileattn.dit.SelfAttention;
import tileattn.dit.TextEmbeddings;
import tileattn.dit.WanCheckpoint;
import tileattn.dit.WanConfig;
import tileattn.dit.WanModel;
import tileattn.dit.WanTransformer;
import tileattn.dit.WanWeights;
import tileattn.dit.WindowSchedule;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.Window;
import tileattn.search.WindowStrategy;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsWriter;

/** Samples a latent video with the Wan-2.1 transformer on the CPU (fp32) or the GPU (bf16). */
@Command(name = "dit", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Samples a latent video with the Wan-2.1 text-to-video transformer on the CPU",
            "(fp32) or the GPU (bf16, cuBLASLt; --device): flow-matching Euler with",
            "classifier-free guidance, dense attention for",
            "the first steps and STA or VSA after them. Weights come from a diffusers",
            "checkpoint folder (--weights) or are random (seeded) for latency work; text",
            "embeddings come from a safetensors file (--text) or are random."},
        footer = {"",
            "Text file: tensor 'context' [N, L, 4096] (or [L, 4096]), the umT5-XXL embeddings",
            "of N prompts, L <= 512 tokens each, and 'context_null' [1 or N, L', 4096] for",
            "the negative prompt (needed unless --guidance 1). Prompts are zero-padded to",
            "512 tokens as Wan pads them.",
            "Output: tensor 'latent' [16, T, H, W] (or [N, 16, T, H, W] for N prompts), F32,",
            "with the run's settings in the metadata.",
            "wan-1.3b holds 1.4e9 fp32 parameters: give it a heap of 8 GiB or more",
            "(java -Xmx8g -jar tileattn.jar dit ...)."})
final class DitCommand implements Callable<Integer> {

    enum Kind { dense, sta, vsa }

    @Spec
    CommandSpec spec;

    @Option(names = "--config", defaultValue = "tiny", paramLabel = "NAME",
            description = "Model configuration: wan-1.3b or tiny (default ${DEFAULT-VALUE}).")
    String configName;

    @Option(names = "--latent", required = true, paramLabel = "T,H,W", converter = Shape3Converter.class,
            description = "Latent video in voxels, e.g. 21,60,104 for Wan's 480p 81 frames (tokens: T, H/2, W/2).")
    Shape3 latent;

    @Option(names = "--steps", defaultValue = "50", description = "Denoising steps (default ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--attention", defaultValue = "dense", paramLabel = "KIND",
            description = "Self-attention after the dense steps: dense, sta or vsa (default ${DEFAULT-VALUE}).")
    Kind kind;

    @Option(names = "--dense-steps", defaultValue = "0", paramLabel = "M",
            description = "Run the first M steps with dense attention (default ${DEFAULT-VALUE}).")
    int denseSteps;

    @Option(names = "--sta-tile", defaultValue = "6,8,8", paramLabel = "t,h,w", converter = Shape3Converter.class,
            description = "STA tile in tokens (default ${DEFAULT-VALUE}).")
    Shape3 staTile;

    @ArgGroup(exclusive = true)
    StaWindows staWindows;

    static final class StaWindows {
        @Option(names = "--window", paramLabel = "a,b,c", converter = WindowConverter.class,
                description = "STA window in tiles for every layer and head (default 3,3,3, capped at the grid).")
        Window window;

        @Option(names = "--windows", paramLabel = "FILE",
                description = "Per-head STA windows for every layer, JSON {\"windows\": [[t,h,w], ...]}, or a "
                        + "strategy from 'tileattn search' or the STA authors (windows per step, layer and head).")
        Path file;
    }

    @Option(names = "--vsa-tile", defaultValue = "4,4,4", paramLabel = "t,h,w", converter = Shape3Converter.class,
            description = "VSA pooling tile in tokens (default ${DEFAULT-VALUE}).")
    Shape3 vsaTile;

    @ArgGroup(exclusive = true)
    VsaKeep vsaKeep;

    static final class VsaKeep {
        @Option(names = "--topk", paramLabel = "K", description = "VSA: KV tiles kept per query tile.")
        Integer topK;

        @Option(names = "--sparsity", paramLabel = "S", description = "VSA: fraction of KV tiles skipped (default 0.875).")
        Double sparsity;
    }

    @Option(names = "--residual", defaultValue = "bf16", paramLabel = "TYPE", description = ResidualStream.DESCRIPTION)
    ResidualStream residual;

    @Option(names = "--guidance", defaultValue = "5.0", paramLabel = "G",
            description = "Classifier-free guidance scale; 1 skips the unconditional branch (default ${DEFAULT-VALUE}).")
    double guidance;

    @Option(names = "--shift", defaultValue = "5.0", paramLabel = "S",
            description = "Shift of the noise schedule (Wan's default ${DEFAULT-VALUE}).")
    double shift;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the noise and of random weights and text "
            + "(default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--weights", paramLabel = "DIR",
            description = "Diffusers checkpoint folder (or its transformer/ parent, or one .safetensors file); "
                    + "random weights when absent.")
    Path weights;

    @Option(names = "--text", paramLabel = "FILE", description = "Text embeddings (layout below); random when absent.")
    Path text;

    @Option(names = "--text-tokens", paramLabel = "L",
            description = "Tokens of the random text embeddings (default: the model's text length).")
    Integer textTokens;

    @Mixin
    DeviceOption device;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the final latent.")
    Path out;

    @Override
    public Integer call() {
        try {
            return run();
        } catch (OutOfMemoryError e) {
            throw new IllegalStateException(String.format(Locale.ROOT, "ran out of Java heap (max %.1f GiB); run with "
                    + "a larger heap, e.g. java -Xmx16g -jar tileattn.jar dit ...",
                    Runtime.getRuntime().maxMemory() / (double) (1L << 30)), e);
        }
    }

    private int run() {
        WanConfig config;
        try {
            config = WanConfig.byName(configName);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--config: " + e.getMessage());
        }
        if (denseSteps < 0) {
            throw new ParameterException(spec.commandLine(), "--dense-steps must be >= 0, got " + denseSteps);
        }
        Shape3 tokens;
        try {
            tokens = config.tokenGrid(latent);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--latent: " + e.getMessage());
        }
        AttentionSchedule schedule = AttentionSchedule.denseFirst(denseSteps, sparse(config, tokens));
        FlowMatchSampler.Settings settings = new FlowMatchSampler.Settings(steps, shift, guidance, schedule);

        PrintWriter pw = spec.commandLine().getOut();
        pw.printf("model: %s, %s weights%n", config, weights == null ? "random (seed " + seed + ")" : weights.toString());
        pw.printf("latent %s → %s = %d video tokens; %d steps, shift %s, guidance %s; matmul %s%n", latent, tokens,
                tokens.volume(), steps, fmt(shift), fmt(guidance), Matmul.kernelName());
        pw.printf("attention: %s%s%n", schedule.at(steps - 1).describe(),
                denseSteps > 0 ? " after " + Math.min(denseSteps, steps) + " dense steps" : "");
        pw.flush();

        DeviceOption.Backend backend = config.headDim() == 64 || config.headDim() == 128 ? device.resolve()
                : device.resolveCpuOnly("the GPU attention kernels take head dim 64 or 128, " + config.name()
                        + " has " + config.headDim());
        pw.printf("device: %s%n", device.note());
        pw.flush();

        long loadStart = System.nanoTime();
        WanWeights w = weights == null ? RandomWeights.create(config, seed) : WanCheckpoint.load(weights, config);
        TextEmbeddings embeddings = text == null
                ? TextEmbeddings.random(config, textTokens == null ? config.textLength() : textTokens, seed + 1)
                : TextEmbeddings.read(text, config);
        int prompts = embeddings.prompts();
        FloatTensor noise = Noise.gaussian(seed, prompts, config.inChannels(), latent.t(), latent.h(), latent.w());

        double[] stepMs = new double[steps];
        FloatTensor result;
        if (backend == DeviceOption.Backend.GPU) {
            try (GpuWanModel model = GpuWanModel.open(w, residual.dtype)) {
                w = null;   // the host copy is no longer needed once uploaded (the model keeps what it uses)
                pw.printf("weights on the GPU in %.1f s; %s%n", (System.nanoTime() - loadStart) / 1e9, model.describe());
                pw.flush();
                result = sample(model, noise, embeddings, settings, stepMs);
            }
        } else {
            WanModel model = new WanModel(w);
            pw.printf("weights ready in %.1f s%n", (System.nanoTime() - loadStart) / 1e9);
            pw.flush();
            result = sample(model, noise, embeddings, settings, stepMs);
        }
        writeLatent(result, config, embeddings, schedule);

        TextTable table = new TextTable("steps", "attention", "mean step ms", "total s");
        addRow(table, stepMs, 0, Math.min(denseSteps, steps), "dense");
        addRow(table, stepMs, Math.min(denseSteps, steps), steps, schedule.at(steps - 1).describe());
        table.print(pw);
        pw.printf("latent %s written to %s%n", FloatTensor.zeros(outShape(result)).shapeString(), out);
        pw.flush();
        return 0;
    }

    private static <C extends WanTransformer.Condition> FloatTensor sample(WanTransformer<C> model, FloatTensor noise,
            TextEmbeddings embeddings, FlowMatchSampler.Settings settings, double[] stepMs) {
        int steps = settings.steps();
        try (ProgressBar progress = new ProgressBar(steps)) {
            progress.label("step 1/" + steps);
            return FlowMatchSampler.sample(model, noise, embeddings, settings, (step, total, sigma, attention, nanos) -> {
                stepMs[step] = nanos / 1e6;
                progress.step();
                progress.label(step + 1 < total ? "step " + (step + 2) + "/" + total : "");
            });
        }
    }

    /**
     * A search strategy's windows per step, layer and head; its steps that are full attention everywhere run the
     * dense kernel, which computes the same thing with no tile bookkeeping.
     */
    private AttentionSchedule fromStrategy(WindowStrategy strategy, WanConfig config, TileGrid grid) {
        Path file = staWindows.file;
        if (strategy.layers() != config.layers() || strategy.heads() != config.heads()) {
            throw new IllegalArgumentException(file + ": the strategy has " + strategy.layers() + " layers of "
                    + strategy.heads() + " heads but the " + config.name() + " model has " + config.layers()
                    + " layers of " + config.heads() + " heads");
        }
        if (strategy.steps() < steps) {
            throw new IllegalArgumentException(file + ": the strategy covers " + strategy.steps()
                    + " steps but --steps is " + steps);
        }
        Window full = Window.full(grid.tiles());
        WindowSchedule windows = strategy::windowsFor;
        String name = "strategy " + file.getFileName();
        return step -> {
            boolean dense = true;
            for (int layer = 0; layer < strategy.layers() && dense; layer++) {
                dense = Arrays.stream(strategy.windowsFor(step, layer)).allMatch(full::equals);
            }
            return dense ? new SelfAttention.Dense() : new SelfAttention.Sta(staTile, windows, step, name);
        };
    }

    /** The attention of the steps after the dense ones, its tile fitted to the token grid. */
    private AttentionSchedule sparse(WanConfig config, Shape3 tokens) {
        return switch (kind) {
            case dense -> AttentionSchedule.always(new SelfAttention.Dense());
            case sta -> {
                TileGrid grid = new TileGrid(tokens, staTile);
                if (staWindows != null && staWindows.file != null) {
                    Optional<WindowStrategy> strategy = WindowsFile.strategy(staWindows.file, tokens, staTile);
                    if (strategy.isPresent()) {
                        yield fromStrategy(strategy.get(), config, grid);
                    }
                    List<Window> perHead = WindowsFile.read(staWindows.file);
                    Window[] heads = perHead.toArray(Window[]::new);
                    WindowSchedule windows = (step, layer) -> heads.clone();
                    yield step -> new SelfAttention.Sta(staTile, windows, step, "per-head windows of "
                            + staWindows.file.getFileName());
                }
                Window window = staWindows != null && staWindows.window != null ? staWindows.window
                        : DefaultWindows.capped(grid, new int[]{3, 3, 3}).getFirst();
                try {
                    window.checkFits(grid.tiles());
                } catch (IllegalArgumentException e) {
                    throw new ParameterException(spec.commandLine(), "--window: " + e.getMessage() + " (tiles of "
                            + staTile + " over " + tokens + " tokens)");
                }
                yield AttentionSchedule.always(SelfAttention.Sta.uniform(staTile, window, config.heads()));
            }
            case vsa -> {
                SelfAttention.Vsa vsa;
                try {
                    vsa = vsaKeep != null && vsaKeep.topK != null ? SelfAttention.Vsa.keepTopK(vsaTile, vsaKeep.topK)
                            : SelfAttention.Vsa.ofSparsity(vsaTile, vsaKeep != null && vsaKeep.sparsity != null
                            ? vsaKeep.sparsity : 0.875);
                    vsa.keep(new TileGrid(tokens, vsaTile).tileCount());
                } catch (IllegalArgumentException e) {
                    throw new ParameterException(spec.commandLine(), e.getMessage());
                }
                yield AttentionSchedule.always(vsa);
            }
        };
    }

    private void writeLatent(FloatTensor result, WanConfig config, TextEmbeddings embeddings, AttentionSchedule schedule) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("config", config.name());
        meta.put("latent", latent.t() + "," + latent.h() + "," + latent.w());
        meta.put("steps", Integer.toString(steps));
        meta.put("dense_steps", Integer.toString(Math.min(denseSteps, steps)));
        meta.put("attention", schedule.at(steps - 1).describe());
        meta.put("shift", fmt(shift));
        meta.put("guidance", fmt(guidance));
        meta.put("seed", Long.toString(seed));
        meta.put("weights", weights == null ? "random" : weights.toString());
        meta.put("text", text == null ? "random" : text.toString());
        FloatTensor shaped = new FloatTensor(outShape(result), result.data());
        SafetensorsWriter.write(out, List.of(new NamedTensor("latent", shaped, DType.F32)), meta);
    }

    /** [16, T, H, W] for one prompt, [N, 16, T, H, W] for several. */
    private static int[] outShape(FloatTensor result) {
        int[] s = result.shape();
        return s[0] == 1 ? java.util.Arrays.copyOfRange(s, 1, s.length) : s;
    }

    private static void addRow(TextTable table, double[] ms, int from, int to, String attention) {
        if (to <= from) {
            return;
        }
        double sum = 0;
        for (int i = from; i < to; i++) {
            sum += ms[i];
        }
        table.add((from + 1) + ".." + to, attention, String.format(Locale.ROOT, "%.1f", sum / (to - from)),
                String.format(Locale.ROOT, "%.2f", sum / 1000));
    }

    private static String fmt(double v) {
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.1f", v) : Double.toString(v);
    }
}
