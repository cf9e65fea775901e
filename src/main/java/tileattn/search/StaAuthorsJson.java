package tileattn.search;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * The strategy format the STA authors publish (e.g. FastVideo's mask_strategy_hunyuan.json): one JSON object
 * mapping {@code "step_layer_head"} to {@code [wt, wh, ww]} in tiles, with an entry for every combination. The
 * file names neither the video nor the tile, so reading takes the token layout it was made for. Written
 * compactly in step, layer, head order, as the published files are.
 */
public final class StaAuthorsJson {

    private static final Pattern KEY = Pattern.compile("(\\d+)_(\\d+)_(\\d+)");
    private static final ObjectMapper MAPPER = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private StaAuthorsJson() {
    }

    public static void write(WindowStrategy strategy, Path file) throws IOException {
        Files.writeString(file, toJson(strategy));
    }

    public static String toJson(WindowStrategy strategy) {
        StringBuilder out = new StringBuilder(strategy.steps() * strategy.layers() * strategy.heads() * 20);
        out.append('{');
        for (int s = 0; s < strategy.steps(); s++) {
            for (int l = 0; l < strategy.layers(); l++) {
                Window[] heads = strategy.windowsFor(s, l);
                for (int h = 0; h < heads.length; h++) {
                    if (out.length() > 1) {
                        out.append(',');
                    }
                    Window w = heads[h];
                    out.append('"').append(s).append('_').append(l).append('_').append(h).append("\":[")
                            .append(w.t()).append(',').append(w.h()).append(',').append(w.w()).append(']');
                }
            }
        }
        return out.append('}').toString();
    }

    public static WindowStrategy read(Path file, TokenLayout layout) throws IOException {
        return parse(Files.readString(file), file.toString(), layout);
    }

    /** Whether a parsed JSON document looks like this format (an object whose first key is "step_layer_head"). */
    static boolean isThisFormat(JsonNode root) {
        if (!root.isObject() || root.isEmpty()) {
            return false;
        }
        return KEY.matcher(root.fieldNames().next()).matches();
    }

    /**
     * @param source how to name the document in error messages (usually its path)
     * @throws IllegalArgumentException naming the source and the offending key
     */
    public static WindowStrategy parse(String json, String source, TokenLayout layout) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        return fromTree(root, source, layout);
    }

    static WindowStrategy fromTree(JsonNode root, String source, TokenLayout layout) {
        if (root == null || !root.isObject() || root.isEmpty()) {
            throw new IllegalArgumentException(source + ": expected a non-empty JSON object of \"step_layer_head\": [wt, wh, ww]");
        }
        int steps = 0, layers = 0, heads = 0;
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            int[] key = key(it.next(), source);
            steps = Math.max(steps, key[0] + 1);
            layers = Math.max(layers, key[1] + 1);
            heads = Math.max(heads, key[2] + 1);
        }
        long expected = (long) steps * layers * heads;
        if (expected != root.size()) {
            throw new IllegalArgumentException(source + ": the keys reach " + steps + " steps × " + layers + " layers × " + heads
                    + " heads = " + expected + " entries but the file has " + root.size() + "; first missing: "
                    + firstMissing(root, steps, layers, heads));
        }
        Window[][][] windows = new Window[steps][layers][heads];
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            int[] key = key(e.getKey(), source);
            windows[key[0]][key[1]][key[2]] = StrategyJson.window(e.getValue(), source + ": \"" + e.getKey() + "\"");
        }
        try {
            return new WindowStrategy(layout, windows);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private static String firstMissing(JsonNode root, int steps, int layers, int heads) {
        for (int s = 0; s < steps; s++) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    if (!root.has(s + "_" + l + "_" + h)) {
                        return "\"" + s + "_" + l + "_" + h + "\"";
                    }
                }
            }
        }
        return "none (a key is written twice with different zero padding)";
    }

    private static int[] key(String key, String source) {
        Matcher m = KEY.matcher(key);
        if (!m.matches()) {
            throw new IllegalArgumentException(source + ": key \"" + key + "\" is not \"step_layer_head\" (three integers joined by _)");
        }
        try {
            return new int[]{Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3))};
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(source + ": key \"" + key + "\" has an index too large", e);
        }
    }
}
