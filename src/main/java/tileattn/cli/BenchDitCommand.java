package tileattn.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.dit.GpuWanModel;
import tileattn.dit.Noise;
import tileattn.dit.RandomWeights;
import tileattn.dit.SelfAttention;
import tileattn.dit.StepProfile;
import tileattn.dit.WanConfig;
import tileattn.kernels.GpuSupport;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.Window;
import tileattn.tensor.DType;

/** {@code tileattn bench dit}: one Wan-2.1 transformer step on the GPU with dense, STA and VSA self-attention. */
@Command(name = "dit", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Times one Wan-2.1 transformer step (one forward of the conditional and unconditional batch) on the GPU",
            "with random bf16 weights: dense, STA and VSA self-attention. Each step is bracketed by CUDA events on",
            "the model's stream; reports the median step over the timed runs. One more step, with an event wherever the",
            "kind of work changes, gives the time per part (GEMMs, norms, RoPE, GELU, cross- and self-attention)."})
final class BenchDitCommand implements Callable<Integer> {

    enum Kind { dense, sta, vsa }

    @Spec
    CommandSpec spec;

    @Option(names = "--config", defaultValue = "wan-1.3b", paramLabel = "NAME",
            description = "Model configuration (default ${DEFAULT-VALUE}).")
    String configName;

    @Option(names = "--latent", defaultValue = "21,60,104", paramLabel = "T,H,W", converter = Shape3Converter.class,
            description = "Latent video (default ${DEFAULT-VALUE}: Wan 480p, 81 frames, 21x30x52 = 32,760 tokens).")
    Shape3 latent;

    @Option(names = "--text-tokens", paramLabel = "L", description = "Text tokens per prompt (default: the model's).")
    Integer textTokens;

    @Option(names = "--batch", defaultValue = "2", description = "Batch (2 = conditional + unconditional; default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--attention", defaultValue = "dense,sta,vsa", split = ",", paramLabel = "KIND",
            description = "Self-attentions to time (default ${DEFAULT-VALUE}).")
    List<Kind> kinds;

    @Option(names = "--sta-tile", defaultValue = "6,8,8", converter = Shape3Converter.class, paramLabel = "t,h,w",
            description = "STA tile in tokens (default ${DEFAULT-VALUE}).")
    Shape3 staTile;

    @Option(names = "--window", defaultValue = "3,3,3", converter = WindowConverter.class, paramLabel = "a,b,c",
            description = "STA window in tiles, every layer and head (default ${DEFAULT-VALUE}).")
    Window window;

    @Option(names = "--vsa-tile", defaultValue = "4,4,4", converter = Shape3Converter.class, paramLabel = "t,h,w",
            description = "VSA tile in tokens (default ${DEFAULT-VALUE}).")
    Shape3 vsaTile;

    @Option(names = "--sparsity", defaultValue = "0.875", description = "VSA sparsity (default ${DEFAULT-VALUE}).")
    double sparsity;

    @Option(names = "--residual", defaultValue = "bf16", paramLabel = "TYPE", description = ResidualStream.DESCRIPTION)
    ResidualStream residual;

    @Option(names = "--iters", defaultValue = "3", description = "Timed steps per attention (default ${DEFAULT-VALUE}).")
    int iters;

    @Option(names = "--warmup", defaultValue = "1", description = "Untimed steps first (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of weights and inputs (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--tsv", paramLabel = "FILE", description = "Also write the results as tab-separated values.")
    Path tsv;

    /** One timed attention: median step, the last step's time per kind of work, all runs. */
    record Row(String attention, double stepMs, Map<StepProfile.Part, Double> parts, double[] runs) {
        /** All of the self-attention: VSA's selection is timed apart from the attention kernels. */
        double attentionMs() {
            return parts.get(StepProfile.Part.SELF_ATTENTION) + parts.get(StepProfile.Part.VSA_SELECTION);
        }

        double share() {
            return attentionMs() / stepMs;
        }
    }

    @Override
    public Integer call() throws IOException {
        WanConfig config;
        Shape3 tokens;
        try {
            config = WanConfig.byName(configName);
            tokens = config.tokenGrid(latent);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        if (iters < 1 || warmup < 0 || batch < 1) {
            throw new ParameterException(spec.commandLine(), "--iters must be >= 1, --warmup >= 0, --batch >= 1");
        }
        GpuSupport.whyUnusable().ifPresent(why -> {
            throw new ParameterException(spec.commandLine(), "bench dit needs a GPU: " + why);
        });
        List<SelfAttention> attentions = new ArrayList<>();
        for (Kind kind : kinds) {
            attentions.add(switch (kind) {
                case dense -> new SelfAttention.Dense();
                case sta -> {
                    try {
                        window.checkFits(new TileGrid(tokens, staTile).tiles());
                    } catch (IllegalArgumentException e) {
                        throw new ParameterException(spec.commandLine(), "--window: " + e.getMessage());
                    }
                    yield SelfAttention.Sta.uniform(staTile, window, config.heads());
                }
                case vsa -> SelfAttention.Vsa.ofSparsity(vsaTile, sparsity);
            });
        }
        int text = textTokens == null ? config.textLength() : textTokens;
        PrintWriter out = spec.commandLine().getOut();
        out.printf(Locale.ROOT, "bench dit: %s, latent %s -> %s = %d video tokens, %d text tokens, batch %d, random "
                + "bf16 weights (seed %d)%n", config, latent, tokens, tokens.volume(), text, batch, seed);
        out.flush();
        long t0 = System.nanoTime();
        List<Row> rows = new ArrayList<>();
        try (GpuWanModel model = GpuWanModel.open(RandomWeights.create(config, seed), residual.dtype)) {
            out.printf(Locale.ROOT, "weights on the GPU in %.1f s; %s%n", (System.nanoTime() - t0) / 1e9, model.describe());
            out.flush();
            try (DeviceScope scope = model.context().openScope();
                 GpuWanModel.Text condition = model.condition(Noise.gaussian(seed + 1, batch, text, config.textDim()))) {
                CudaStream stream = model.context().defaultStream();
                DeviceTensor in = DeviceTensor.upload(scope, Noise.gaussian(seed + 2, batch, config.inChannels(),
                        latent.t(), latent.h(), latent.w()), DType.F32);
                DeviceTensor velocity = scope.allocateTensor(DType.F32, batch, config.outChannels(), latent.t(),
                        latent.h(), latent.w());
                float[] timesteps = new float[batch];
                java.util.Arrays.fill(timesteps, 500f);
                CudaEvent start = scope.createEvent(), end = scope.createEvent();
                StepProfile profile = new StepProfile(scope);
                for (SelfAttention attention : attentions) {
                    for (int i = 0; i < warmup; i++) {
                        model.forwardDevice(in, timesteps, condition, attention, velocity);
                    }
                    stream.synchronize();
                    double[] runs = new double[iters];
                    // The timed steps run without events inside; one more step, profiled, gives the breakdown.
                    for (int i = 0; i < iters; i++) {
                        start.record(stream);
                        model.forwardDevice(in, timesteps, condition, attention, velocity);
                        end.record(stream);
                        runs[i] = CudaEvent.elapsedMillis(start, end);
                    }
                    model.profile(profile);
                    model.forwardDevice(in, timesteps, condition, attention, velocity);
                    model.profile(null);
                    Map<StepProfile.Part, Double> parts = profile.takeMillis();
                    checkFinite(velocity, attention);
                    Row row = new Row(attention.describe(), Measure.median(runs), parts, runs);
                    rows.add(row);
                    out.printf(Locale.ROOT, "  %-32s step %9.1f ms (runs %s), self-attention %.1f ms (%.1f%%)%n",
                            row.attention, row.stepMs, runs(runs), row.attentionMs(), 100 * row.share());
                    out.flush();
                }
            }
        }
        TextTable table = new TextTable("attention", "step ms", "self-attn ms", "self-attn share", "vs dense");
        double dense = rows.stream().filter(r -> r.attention.equals("dense")).mapToDouble(Row::stepMs).findFirst()
                .orElse(Double.NaN);
        for (Row r : rows) {
            table.add(r.attention, fmt(r.stepMs), fmt(r.attentionMs()), String.format(Locale.ROOT, "%.1f%%", 100 * r.share()),
                    Double.isNaN(dense) ? "-" : String.format(Locale.ROOT, "%.2fx", dense / r.stepMs));
        }
        table.print(out);
        out.println();
        breakdown(rows).print(out);
        out.flush();
        if (tsv != null) {
            StringBuilder sb = new StringBuilder("attention\tstep_ms\tself_attention_ms\tself_attention_share\truns_ms");
            for (StepProfile.Part p : StepProfile.Part.values()) {
                sb.append("\tms_").append(p.key());
            }
            sb.append("\tms_profiled_step\n");
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "%s\t%.2f\t%.2f\t%.4f\t%s", r.attention, r.stepMs, r.attentionMs(),
                        r.share(), runs(r.runs)));
                for (StepProfile.Part p : StepProfile.Part.values()) {
                    sb.append(String.format(Locale.ROOT, "\t%.2f", r.parts.get(p)));
                }
                sb.append(String.format(Locale.ROOT, "\t%.2f%n", total(r.parts)));
            }
            if (tsv.getParent() != null) {
                Files.createDirectories(tsv.getParent());
            }
            Files.writeString(tsv, sb.toString());
        }
        return 0;
    }

    /** Milliseconds per kind of work (rows) and attention (columns) in the profiled step. */
    static TextTable breakdown(List<Row> rows) {
        List<String> header = new ArrayList<>();
        header.add("profiled step, ms per part");
        for (Row r : rows) {
            header.add(r.attention);
        }
        TextTable t = new TextTable(header.toArray(String[]::new));
        for (StepProfile.Part p : StepProfile.Part.values()) {
            List<String> line = new ArrayList<>();
            line.add(p.label());
            for (Row r : rows) {
                line.add(fmt(r.parts.get(p)));
            }
            t.add(line.toArray(String[]::new));
        }
        List<String> rest = new ArrayList<>(), all = new ArrayList<>();
        rest.add("all but self-attention");
        all.add("profiled step (sum; events add a little)");
        for (Row r : rows) {
            rest.add(fmt(total(r.parts) - r.attentionMs()));
            all.add(fmt(total(r.parts)));
        }
        t.add(rest.toArray(String[]::new));
        t.add(all.toArray(String[]::new));
        return t;
    }

    private static double total(Map<StepProfile.Part, Double> parts) {
        return parts.values().stream().mapToDouble(Double::doubleValue).sum();
    }

    /** The last step's output must be finite everywhere (random weights keep activations in range). */
    private static void checkFinite(DeviceTensor velocity, SelfAttention attention) {
        float[] v = velocity.download().data();
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new IllegalStateException(attention.describe() + ": the step's velocity is not finite at " + i);
            }
        }
    }

    private static String runs(double[] runs) {
        StringBuilder sb = new StringBuilder();
        for (double r : runs) {
            sb.append(sb.isEmpty() ? "" : ",").append(String.format(Locale.ROOT, "%.1f", r));
        }
        return sb.toString();
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }
}
