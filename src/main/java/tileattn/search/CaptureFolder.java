package tileattn.search;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import tileattn.layout.Shape3;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;
import tileattn.tensor.TensorInfo;

/**
 * Attention inputs captured from a model: a folder of {@code .safetensors} files, one per attention call (one
 * denoising step of one layer). Each file holds tensors {@code q}, {@code k}, {@code v} of shape [B, heads, S, d]
 * (F32, F16 or BF16) with tokens in raster order, video tokens T-major then text tokens, S = T·H·W + L, and these
 * {@code __metadata__} strings:
 * <ul>
 * <li>{@code step}: the denoising step, from 0 in the order the model runs them;</li>
 * <li>{@code layer}: the transformer layer, from 0;</li>
 * <li>{@code video}: "T,H,W", the video in tokens (latent frames × latent height / patch × latent width / patch);</li>
 * <li>{@code text_length}: L, the text tokens after the video ("0" when there are none; absent means 0).</li>
 * </ul>
 * Every file must agree on video, text length, B, heads and d. Several files of the same step and layer (other
 * prompts or seeds) are all measured and their errors averaged. Other files in the folder are ignored.
 */
public final class CaptureFolder {

    public static final String STEP = "step";
    public static final String LAYER = "layer";
    public static final String VIDEO = "video";
    public static final String TEXT_LENGTH = "text_length";

    private CaptureFolder() {
    }

    /** Reads the headers of every capture in the folder and checks them; tensors are read later, one file at a time. */
    public static CaptureSet open(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) {
            throw new IllegalArgumentException(folder + ": no such folder of captures");
        }
        List<Path> files;
        try (Stream<Path> list = Files.list(folder)) {
            files = list.filter(p -> p.getFileName().toString().endsWith(".safetensors") && Files.isRegularFile(p)).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException(folder + ": holds no .safetensors files");
        }
        List<Capture> captures = new ArrayList<>();
        Header first = null;
        for (Path file : files) {
            Header h = header(file);
            if (first == null) {
                first = h;
            } else {
                first.checkSame(h);
            }
            captures.add(new FileCapture(file, h.step, h.layer));
        }
        return new CaptureSet(first.video, first.text, (int) first.shape[0], (int) first.shape[1], (int) first.shape[3], captures,
                "captures in " + folder + " (" + files.size() + " files)");
    }

    private record Header(Path file, int step, int layer, Shape3 video, int text, long[] shape) {

        void checkSame(Header o) {
            if (!o.video.equals(video) || o.text != text) {
                throw new IllegalArgumentException(o.file + ": video " + o.video + " with " + o.text + " text tokens, but "
                        + file + " has video " + video + " with " + text + " text tokens; all captures must share one layout");
            }
            if (!Arrays.equals(o.shape, shape)) {
                throw new IllegalArgumentException(o.file + ": q, k, v are " + Arrays.toString(o.shape) + " but "
                        + file + " has " + Arrays.toString(shape) + "; all captures must share batch, heads and head dim");
            }
        }
    }

    private static Header header(Path file) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<String, String> meta = f.metadata();
            int step = integer(file, meta, STEP);
            int layer = integer(file, meta, LAYER);
            String videoText = meta.get(VIDEO);
            if (videoText == null) {
                throw new IllegalArgumentException(file + ": metadata '" + VIDEO + "' (\"T,H,W\" in tokens) is missing");
            }
            Shape3 video;
            try {
                video = Shape3.parse(videoText);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + ": metadata '" + VIDEO + "': " + e.getMessage(), e);
            }
            int text = meta.containsKey(TEXT_LENGTH) ? integer(file, meta, TEXT_LENGTH) : 0;
            long[] shape = null;
            for (String name : new String[]{"q", "k", "v"}) {
                if (!f.contains(name)) {
                    throw new IllegalArgumentException(file + ": no tensor '" + name + "'; a capture holds q, k and v, it has "
                            + String.join(", ", f.names()));
                }
                TensorInfo info = f.info(name);
                long[] s = info.shape();
                if (s.length != 4) {
                    throw new IllegalArgumentException(file + ": '" + name + "' has shape " + info.shapeString()
                            + ", expected [batch, heads, S, d]");
                }
                if (shape != null && !Arrays.equals(s, shape)) {
                    throw new IllegalArgumentException(file + ": '" + name + "' has shape " + info.shapeString()
                            + " but 'q' has " + Arrays.toString(shape));
                }
                shape = s;
            }
            long expected = (long) video.volume() + text;
            if (shape[2] != expected) {
                throw new IllegalArgumentException(file + ": S = " + shape[2] + " tokens, but video " + video + " + "
                        + text + " text tokens make " + expected + " (check the '" + VIDEO + "' and '" + TEXT_LENGTH + "' metadata)");
            }
            for (long extent : shape) {
                if (extent < 1 || extent > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException(file + ": q, k, v of shape " + Arrays.toString(shape)
                            + " have an empty or too large dimension");
                }
            }
            return new Header(file, step, layer, video, text, shape);
        }
    }

    private static int integer(Path file, Map<String, String> meta, String key) {
        String value = meta.get(key);
        if (value == null) {
            throw new IllegalArgumentException(file + ": metadata '" + key + "' is missing (keys: " + STEP + ", " + LAYER
                    + ", " + VIDEO + ", " + TEXT_LENGTH + ")");
        }
        try {
            int v = Integer.parseInt(value.trim());
            if (v < 0) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(file + ": metadata '" + key + "' must be a non-negative integer, got '" + value + "'");
        }
    }

    private record FileCapture(Path file, int step, int layer) implements Capture {

        @Override
        public String name() {
            return file.toString();
        }

        @Override
        public Qkv load() {
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                return new Qkv(f.read("q"), f.read("k"), f.read("v"));
            }
        }
    }

    /**
     * Writes one capture (for Java models, and for tests); q, k, v are [B, heads, T·H·W + textLength, d] in raster
     * order.
     */
    public static void write(Path file, int step, int layer, Shape3 video, int textLength, FloatTensor q, FloatTensor k,
                             FloatTensor v, DType dtype) {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put(STEP, Integer.toString(step));
        meta.put(LAYER, Integer.toString(layer));
        meta.put(VIDEO, video.t() + "," + video.h() + "," + video.w());
        meta.put(TEXT_LENGTH, Integer.toString(textLength));
        SafetensorsWriter.write(file, List.of(new NamedTensor("q", q, dtype), new NamedTensor("k", k, dtype),
                new NamedTensor("v", v, dtype)), meta);
    }
}
