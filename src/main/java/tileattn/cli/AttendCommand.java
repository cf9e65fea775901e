package tileattn.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.api.Attention;
import tileattn.api.AttentionGradients;
import tileattn.api.AttentionSpec;
import tileattn.api.AttentionTape;
import tileattn.api.GpuBackend;
import tileattn.kernels.TileAttentionKernel;
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

/** Runs one attention on tensors from a safetensors file and writes the output to another. */
@Command(name = "attend", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
            "Computes dense, STA or VSA attention on q, k, v (and an optional gate) read from a safetensors file.",
            "Tensors are [batch, heads, S, d] with tokens in raster order: T*H*W video tokens, then L text tokens.",
            "The output tensor 'out' is written in the same order and in q's dtype (F32, F16 or BF16).",
            "On the GPU (every method, --grad-output too; head dim 64 or 128) F16 inputs compute in fp16 and F32 or",
            "BF16 inputs in bf16, accumulating in fp32; other head dims run on the CPU."},
        footer = {"",
            "--windows FILE.json holds one window per head, in tiles:",
            "{\"windows\": [[3,3,3],[5,6,10]]}; or a strategy from 'tileattn search' (its tile",
            "is then the default) or in the STA authors' \"step_layer_head\" format, where",
            "--step and --layer pick the attention call (needed where it has several).",
            "--video and --text-length default to the input's metadata keys 'video'",
            "(\"T,H,W\") and 'text_length'."})
final class AttendCommand implements Callable<Integer> {

    static final Shape3 STA_TILE = new Shape3(6, 8, 8);
    static final Shape3 VSA_TILE = new Shape3(4, 4, 4);

    @Spec
    CommandSpec spec;

    @Option(names = "--method", required = true, description = "dense, sta or vsa.")
    Method method;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors", description = "Holds q, k, v and optionally gate.")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors",
            description = "Receives 'out' (and dq, dk, dv, dgate with --grad-output).")
    Path output;

    @Option(names = "--video", paramLabel = "T,H,W", converter = Shape3Converter.class,
            description = "Video shape in tokens (default: the input's 'video' metadata).")
    Shape3 video;

    @Option(names = "--tile", paramLabel = "t,h,w", converter = Shape3Converter.class,
            description = "Tile shape in tokens (default 6,8,8 for sta, 4,4,4 for vsa).")
    Shape3 tile;

    @ArgGroup(exclusive = true)
    WindowChoice windows;

    static final class WindowChoice {
        @Option(names = "--window", paramLabel = "a,b,c", converter = WindowConverter.class,
                description = "STA window in tiles, the same for every head.")
        Window window;

        @Option(names = "--windows", paramLabel = "FILE.json", description = "STA windows per head, see below.")
        Path file;
    }

    @Option(names = "--text-length", paramLabel = "L",
            description = "Text tokens after the video (default: the input's 'text_length' metadata, else 0).")
    Integer textLength;

    @Option(names = "--step", paramLabel = "S",
            description = "With a strategy file: the denoising step whose windows to use (from 0).")
    Integer step;

    @Option(names = "--layer", paramLabel = "L",
            description = "With a strategy file: the layer whose windows to use (from 0).")
    Integer layer;

    @ArgGroup(exclusive = true)
    TopKChoice topK;

    static final class TopKChoice {
        @Option(names = "--topk", paramLabel = "K", description = "VSA: KV tiles kept per query tile.")
        Integer k;

        @Option(names = "--sparsity", paramLabel = "s",
                description = "VSA: fraction of KV tiles skipped; k = max(1, min(ceil((1-s)*tiles), tiles)).")
        Double sparsity;
    }

    @Option(names = "--scale", paramLabel = "x", description = "Softmax scale (default 1/sqrt(d)).")
    Float scale;

    @Option(names = "--grad-output", paramLabel = "DOUT.safetensors",
            description = "Holds 'dout', the gradient of a loss w.r.t. the output (the output's shape, raster order): "
                    + "also runs the backward and writes dq, dk, dv (and dgate when vsa has a gate) to --output.")
    Path gradOutput;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() {
        checkOptionsFit();
        FloatTensor q, k, v, gate;
        DType outType;
        Map<String, String> inputMeta;
        try (SafetensorsFile in = SafetensorsFile.open(input)) {
            q = in.read("q");
            k = in.read("k");
            v = in.read("v");
            gate = in.contains("gate") ? in.read("gate") : null;
            outType = in.info("q").dtype();
            inputMeta = in.metadata();
        }
        FloatTensor dOut = gradOutput == null ? null : readGradOutput(q);
        // Every method and the backward run on the GPU, but its kernels are compiled for d = 64 and 128 only.
        int d = q.rank() == 4 ? q.dim(3) : -1;
        DeviceOption.Backend backend = q.rank() == 4 && d != 64 && d != 128
                ? device.resolveCpuOnly("the GPU kernels take head dim 64 or 128, the input has d=" + d)
                : device.resolve();
        Shape3 videoShape = video != null ? video : metadataVideo(inputMeta);
        int text = textLength != null ? textLength : metadataTextLength(inputMeta);
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (gate != null && method != Method.vsa) {
            err.println("note: ignoring tensor 'gate' of " + input + " (only --method vsa uses a gate)");
        }
        Map<String, String> outMeta = new LinkedHashMap<>();
        outMeta.put(InputMetadata.METHOD, method.name());
        AttentionSpec attention;
        String detail;
        switch (method) {
            case dense -> {
                if (videoShape != null && q.rank() == 4 && q.dim(2) != videoShape.volume() + text) {
                    throw new IllegalArgumentException("sequence length S=" + q.dim(2) + " does not match video "
                            + videoShape + " (" + videoShape.volume() + " tokens) + " + text + " text tokens");
                }
                attention = AttentionSpec.dense();
                detail = "dense";
            }
            case sta -> {
                Shape3 videoNeeded = require(videoShape);
                TokenLayout layout;
                AttentionSpec.Sta sta;
                if (windows.window != null) {
                    layout = TokenLayout.of(videoNeeded, tile != null ? tile : STA_TILE, text);
                    sta = AttentionSpec.Sta.of(layout, windows.window);
                } else {
                    WindowsFile.Choice choice = WindowsFile.read(windows.file, videoNeeded, tile, text, step, layer);
                    layout = choice.layout();
                    sta = AttentionSpec.Sta.perHead(layout, choice.perHead());
                }
                attention = sta;
                detail = "sta, tiles " + layout.grid().tile() + ", " + describeWindows(sta, layout.grid());
                putLayout(outMeta, videoNeeded, text);
            }
            case vsa -> {
                Shape3 videoNeeded = require(videoShape);
                if (text != 0) {
                    throw new ParameterException(spec.commandLine(), "--method vsa has no text tokens, but the text "
                            + "length is " + text);
                }
                TileGrid grid = new TileGrid(videoNeeded, tile != null ? tile : VSA_TILE);
                AttentionSpec.Vsa vsa = topK.k != null ? AttentionSpec.Vsa.topK(grid, topK.k)
                        : AttentionSpec.Vsa.sparsity(grid, topK.sparsity);
                attention = gate != null ? vsa.withGate(gate) : vsa;
                detail = "vsa, tiles " + grid.tile() + ", top-" + vsa.topK() + " of " + grid.tileCount() + " tiles"
                        + (gate != null ? ", gated" : "");
                putLayout(outMeta, videoNeeded, 0);
            }
            default -> throw new IllegalStateException("unhandled method " + method);
        }
        Attention engine = Attention.cpu();
        if (dOut == null) {
            Measure.Timed<FloatTensor> result;
            String ranOn;
            if (backend == DeviceOption.Backend.GPU) {
                try (GpuBackend gpu = GpuBackend.open(gpuType(outType), TileAttentionKernel.Path.AUTO)) {
                    result = compute(new Attention(gpu), q, k, v, attention);
                    ranOn = "GPU: " + gpu.describe() + ", time includes transfers";
                }
            } else {
                result = compute(engine, q, k, v, attention);
                ranOn = device.note();
            }
            SafetensorsWriter.write(output, List.of(new NamedTensor("out", result.value(), outType)), outMeta);
            out.printf("wrote out %s %s to %s (%s; %.1f ms)%n", result.value().shapeString(), outType, output, detail,
                    result.millis());
            out.println("device: " + ranOn);
        } else {
            try (GpuBackend gpu = backend == DeviceOption.Backend.GPU
                    ? GpuBackend.open(gpuType(outType), TileAttentionKernel.Path.AUTO) : null) {
                Attention trainer = gpu != null ? new Attention(gpu) : engine;
                Measure.Timed<AttentionTape> forward = Measure.time(() -> scale == null
                        ? trainer.forwardForTraining(q, k, v, attention)
                        : trainer.forwardForTraining(q, k, v, attention, scale));
                List<NamedTensor> tensors;
                Measure.Timed<AttentionGradients> backward;
                try (AttentionTape tape = forward.value()) {
                    backward = Measure.time(() -> tape.backward(dOut));
                    AttentionGradients g = backward.value();
                    tensors = new ArrayList<>(List.of(
                            new NamedTensor("out", tape.output(), outType), new NamedTensor("dq", g.dq(), outType),
                            new NamedTensor("dk", g.dk(), outType), new NamedTensor("dv", g.dv(), outType)));
                    if (g.dgate() != null) {
                        tensors.add(new NamedTensor("dgate", g.dgate(), outType));
                    }
                }
                SafetensorsWriter.write(output, tensors, outMeta);
                out.printf("wrote %s %s %s to %s (%s; forward %.1f ms, backward %.1f ms)%n",
                        String.join(", ", tensors.stream().map(NamedTensor::name).toList()), q.shapeString(), outType,
                        output, detail, forward.millis(), backward.millis());
                out.println("device: " + (gpu != null ? "GPU: " + gpu.describe() + ", times include transfers"
                        : device.note()));
            }
        }
        out.flush();
        return 0;
    }

    /** fp16 files compute in fp16; bf16 and fp32 ones in bf16, whose range fp32 values fit. */
    static DType gpuType(DType fileType) {
        return fileType == DType.F16 ? DType.F16 : DType.BF16;
    }

    private Measure.Timed<FloatTensor> compute(Attention engine, FloatTensor q, FloatTensor k, FloatTensor v,
                                               AttentionSpec attention) {
        return Measure.time(() -> scale == null ? engine.attend(q, k, v, attention)
                : engine.attend(q, k, v, attention, scale));
    }

    /** Reads 'dout' and checks its shape before the forward runs, so a mismatch costs no attention. */
    private FloatTensor readGradOutput(FloatTensor q) {
        FloatTensor dOut;
        try (SafetensorsFile grad = SafetensorsFile.open(gradOutput)) {
            dOut = grad.read("dout");
        }
        if (!dOut.sameShape(q)) {
            throw new IllegalArgumentException(gradOutput + ": tensor 'dout' has shape " + dOut.shapeString()
                    + " but the output has q's shape " + q.shapeString());
        }
        return dOut;
    }

    /** Options that belong to another method are mistakes worth reporting rather than ignoring. */
    private void checkOptionsFit() {
        if ((step != null || layer != null) && (windows == null || windows.file == null)) {
            throw new ParameterException(spec.commandLine(), "--step and --layer pick windows from a strategy file given "
                    + "with --windows");
        }
        if (windows != null && method != Method.sta) {
            throw new ParameterException(spec.commandLine(), "--window/--windows apply to --method sta only");
        }
        if (topK != null && method != Method.vsa) {
            throw new ParameterException(spec.commandLine(), "--topk/--sparsity apply to --method vsa only");
        }
        if (tile != null && method == Method.dense) {
            throw new ParameterException(spec.commandLine(), "--tile does not apply to --method dense");
        }
        if (method == Method.sta && windows == null) {
            throw new ParameterException(spec.commandLine(), "--method sta needs --window a,b,c or --windows FILE.json");
        }
        if (method == Method.vsa && topK == null) {
            throw new ParameterException(spec.commandLine(), "--method vsa needs --topk K or --sparsity s");
        }
        if (textLength != null && textLength < 0) {
            throw new ParameterException(spec.commandLine(), "--text-length must be >= 0, got " + textLength);
        }
    }

    private Shape3 require(Shape3 videoShape) {
        if (videoShape == null) {
            throw new ParameterException(spec.commandLine(), "--method " + method + " needs --video T,H,W (the input "
                    + "has no '" + InputMetadata.VIDEO + "' metadata)");
        }
        return videoShape;
    }

    private Shape3 metadataVideo(Map<String, String> meta) {
        String value = meta.get(InputMetadata.VIDEO);
        if (value == null) {
            return null;
        }
        try {
            return Shape3.parse(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(input + ": metadata '" + InputMetadata.VIDEO + "': " + e.getMessage());
        }
    }

    private int metadataTextLength(Map<String, String> meta) {
        String value = meta.get(InputMetadata.TEXT_LENGTH);
        if (value == null) {
            return 0;
        }
        try {
            int l = Integer.parseInt(value.trim());
            if (l < 0) {
                throw new NumberFormatException();
            }
            return l;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(input + ": metadata '" + InputMetadata.TEXT_LENGTH
                    + "' must be a non-negative integer, got '" + value + "'");
        }
    }

    private static void putLayout(Map<String, String> meta, Shape3 video, int text) {
        meta.put(InputMetadata.VIDEO, video.t() + "," + video.h() + "," + video.w());
        meta.put(InputMetadata.TEXT_LENGTH, Integer.toString(text));
    }

    private static String describeWindows(AttentionSpec.Sta sta, TileGrid grid) {
        if (sta.sharedWindow()) {
            Window w = sta.windows().getFirst();
            return "window " + w + fitsNote(w, grid);
        }
        return sta.windows().size() + " per-head windows";
    }

    /** The sparsity of a window that fits; an unfit one is left for the api to report with its head. */
    private static String fitsNote(Window w, TileGrid grid) {
        try {
            return String.format(" (%.1f%% sparse)", 100 * StaMask.sparsity(grid, w));
        } catch (IllegalArgumentException e) {
            return "";
        }
    }
}
