package tileattn.search;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * tileattn's own strategy file. Consecutive steps with identical windows share one range, so a 50-step
 * strategy whose first 15 steps are dense stores those 15 steps in one line:
 *
 * <pre>{@code
 * {
 *   "format": "tileattn.sta-strategy", "version": 1,
 *   "video": [30, 48, 80], "tile": [6, 8, 8], "textLength": 256,
 *   "steps": 50, "layers": 60, "heads": 24,
 *   "ranges": [
 *     {"steps": [0, 14], "full": true},
 *     {"steps": [15, 15], "windows": [
 *       [[5,3,3], [1,6,10], ...],      <- layer 0, one [wt, wh, ww] per head
 *       ...                            <- one line per layer
 *     ]},
 *     {"steps": [16, 49], "window": [3, 3, 3]}
 *   ]
 * }
 * }</pre>
 *
 * "video" is T×H×W in tokens, "tile" t×h×w in tokens, windows are in tiles. "steps" of a range are the first
 * and last denoising step (inclusive); the ranges cover 0..steps-1 in order. A range holds exactly one of:
 * {@code "full": true} (every head attends densely), {@code "window"} (one window for every layer and head) or
 * {@code "windows"} ([layer][head]). "textLength" may be left out (0).
 */
public final class StrategyJson {

    public static final String FORMAT = "tileattn.sta-strategy";
    public static final int VERSION = 1;

    private static final ObjectMapper MAPPER = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private StrategyJson() {
    }

    public static void write(WindowStrategy strategy, Path file) throws IOException {
        Files.writeString(file, toJson(strategy));
    }

    public static String toJson(WindowStrategy strategy) {
        TokenLayout layout = strategy.layout();
        StringBuilder out = new StringBuilder(1024);
        out.append("{\n  \"format\": \"").append(FORMAT).append("\", \"version\": ").append(VERSION).append(",\n");
        out.append("  \"video\": ").append(triple(layout.grid().video()))
                .append(", \"tile\": ").append(triple(layout.grid().tile()))
                .append(", \"textLength\": ").append(layout.textLength()).append(",\n");
        out.append("  \"steps\": ").append(strategy.steps()).append(", \"layers\": ").append(strategy.layers())
                .append(", \"heads\": ").append(strategy.heads()).append(",\n");
        out.append("  \"ranges\": [\n");
        Window full = Window.full(layout.grid().tiles());
        List<WindowStrategy.StepRange> ranges = strategy.stepRanges();
        for (int r = 0; r < ranges.size(); r++) {
            WindowStrategy.StepRange range = ranges.get(r);
            out.append("    {\"steps\": [").append(range.first()).append(", ").append(range.last()).append("], ");
            Window single = singleWindow(strategy, range.first());
            if (full.equals(single)) {
                out.append("\"full\": true}");
            } else if (single != null) {
                out.append("\"window\": ").append(triple(single)).append('}');
            } else {
                out.append("\"windows\": [\n");
                for (int l = 0; l < strategy.layers(); l++) {
                    out.append("      [");
                    Window[] heads = strategy.windowsFor(range.first(), l);
                    for (int h = 0; h < heads.length; h++) {
                        out.append(h == 0 ? "" : ", ").append(compactTriple(heads[h]));
                    }
                    out.append(l + 1 < strategy.layers() ? "],\n" : "]\n");
                }
                out.append("    ]}");
            }
            out.append(r + 1 < ranges.size() ? ",\n" : "\n");
        }
        out.append("  ]\n}\n");
        return out.toString();
    }

    /** The window every layer and head of a step uses, or null when they differ. */
    private static Window singleWindow(WindowStrategy strategy, int step) {
        Window first = strategy.window(step, 0, 0);
        for (int l = 0; l < strategy.layers(); l++) {
            for (Window w : strategy.windowsFor(step, l)) {
                if (!w.equals(first)) {
                    return null;
                }
            }
        }
        return first;
    }

    private static String triple(Shape3 s) {
        return "[" + s.t() + ", " + s.h() + ", " + s.w() + "]";
    }

    private static String triple(Window w) {
        return "[" + w.t() + ", " + w.h() + ", " + w.w() + "]";
    }

    private static String compactTriple(Window w) {
        return "[" + w.t() + "," + w.h() + "," + w.w() + "]";
    }

    public static WindowStrategy read(Path file) throws IOException {
        return parse(Files.readString(file), file.toString());
    }

    /** Whether a parsed JSON document declares this format. */
    static boolean isThisFormat(JsonNode root) {
        return root.isObject() && root.has("format") && FORMAT.equals(root.get("format").asText());
    }

    /**
     * @param source how to name the document in error messages (usually its path)
     * @throws IllegalArgumentException naming the source and the offending field
     */
    public static WindowStrategy parse(String json, String source) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        return fromTree(root, source);
    }

    static WindowStrategy fromTree(JsonNode root, String source) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(source + ": expected a JSON object");
        }
        if (!isThisFormat(root)) {
            throw new IllegalArgumentException(source + ": \"format\" must be \"" + FORMAT + "\"");
        }
        int version = integer(root, "version", source);
        if (version != VERSION) {
            throw new IllegalArgumentException(source + ": unsupported version " + version + " (this reader knows " + VERSION + ")");
        }
        TokenLayout layout = layoutOf(root, source);
        int steps = positive(root, "steps", source);
        int layers = positive(root, "layers", source);
        int heads = positive(root, "heads", source);
        JsonNode ranges = required(root, "ranges", source);
        if (!ranges.isArray()) {
            throw new IllegalArgumentException(source + ": \"ranges\" must be an array");
        }
        Window full = Window.full(layout.grid().tiles());
        Window[][][] windows = new Window[steps][][];
        int nextStep = 0;
        for (int r = 0; r < ranges.size(); r++) {
            JsonNode range = ranges.get(r);
            String where = source + ": ranges[" + r + "]";
            if (!range.isObject()) {
                throw new IllegalArgumentException(where + " must be an object");
            }
            int[] span = ints(required(range, "steps", where), where + ".steps", 2);
            if (span[0] != nextStep || span[1] < span[0] || span[1] >= steps) {
                throw new IllegalArgumentException(where + ".steps is [" + span[0] + ", " + span[1]
                        + "]; ranges must cover steps 0.." + (steps - 1) + " in order without gaps, so this one must start at "
                        + nextStep);
            }
            Window[][] perLayer = rangeWindows(range, where, layers, heads, full);
            for (int s = span[0]; s <= span[1]; s++) {
                windows[s] = perLayer;
            }
            nextStep = span[1] + 1;
        }
        if (nextStep != steps) {
            throw new IllegalArgumentException(source + ": the ranges end at step " + (nextStep - 1) + " but the strategy has "
                    + steps + " steps");
        }
        try {
            return new WindowStrategy(layout, windows);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    /** The layout a document in this format names ("video", "tile", "textLength"). */
    static TokenLayout layoutOf(JsonNode root, String source) {
        Shape3 video = shape(required(root, "video", source), "video", source);
        Shape3 tile = shape(required(root, "tile", source), "tile", source);
        int text = root.has("textLength") ? integer(root, "textLength", source) : 0;
        try {
            return TokenLayout.of(video, tile, text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private static Window[][] rangeWindows(JsonNode range, String where, int layers, int heads, Window full) {
        int kinds = (range.has("full") ? 1 : 0) + (range.has("window") ? 1 : 0) + (range.has("windows") ? 1 : 0);
        if (kinds != 1) {
            throw new IllegalArgumentException(where + " must hold exactly one of \"full\", \"window\" or \"windows\"");
        }
        Window[][] perLayer = new Window[layers][heads];
        if (range.has("full")) {
            if (!range.get("full").isBoolean() || !range.get("full").booleanValue()) {
                throw new IllegalArgumentException(where + ".full must be true (leave it out otherwise)");
            }
            for (Window[] layer : perLayer) {
                Arrays.fill(layer, full);
            }
        } else if (range.has("window")) {
            Window w = window(range.get("window"), where + ".window");
            for (Window[] layer : perLayer) {
                Arrays.fill(layer, w);
            }
        } else {
            JsonNode all = range.get("windows");
            if (!all.isArray() || all.size() != layers) {
                throw new IllegalArgumentException(where + ".windows must be an array of " + layers + " layers, found "
                        + (all.isArray() ? all.size() + " entries" : all.getNodeType()));
            }
            for (int l = 0; l < layers; l++) {
                JsonNode layer = all.get(l);
                if (!layer.isArray() || layer.size() != heads) {
                    throw new IllegalArgumentException(where + ".windows[" + l + "] must be an array of " + heads
                            + " head windows, found " + (layer.isArray() ? layer.size() + " entries" : layer.getNodeType()));
                }
                for (int h = 0; h < heads; h++) {
                    perLayer[l][h] = window(layer.get(h), where + ".windows[" + l + "][" + h + "]");
                }
            }
        }
        return perLayer;
    }

    static Window window(JsonNode node, String where) {
        int[] v = ints(node, where, 3);
        try {
            return new Window(v[0], v[1], v[2]);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    private static Shape3 shape(JsonNode node, String name, String source) {
        int[] v = ints(node, source + ": \"" + name + "\"", 3);
        try {
            return new Shape3(v[0], v[1], v[2]);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": \"" + name + "\": " + e.getMessage(), e);
        }
    }

    private static int[] ints(JsonNode node, String where, int count) {
        if (node == null || !node.isArray() || node.size() != count) {
            throw new IllegalArgumentException(where + " must be an array of " + count + " integers, found " + node);
        }
        int[] v = new int[count];
        for (int i = 0; i < count; i++) {
            if (!node.get(i).canConvertToInt() || !node.get(i).isIntegralNumber()) {
                throw new IllegalArgumentException(where + " must be an array of " + count + " integers, found " + node);
            }
            v[i] = node.get(i).intValue();
        }
        return v;
    }

    private static JsonNode required(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null) {
            throw new IllegalArgumentException(where + ": missing \"" + field + "\"");
        }
        return v;
    }

    private static int integer(JsonNode node, String field, String where) {
        JsonNode v = required(node, field, where);
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new IllegalArgumentException(where + ": \"" + field + "\" must be an integer, found " + v);
        }
        return v.intValue();
    }

    private static int positive(JsonNode node, String field, String where) {
        int v = integer(node, field, where);
        if (v < 1) {
            throw new IllegalArgumentException(where + ": \"" + field + "\" must be at least 1, found " + v);
        }
        return v;
    }
}
