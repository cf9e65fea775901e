package tileattn.cli;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.search.StrategyFiles;
import tileattn.search.WindowStrategy;

/**
 * The windows of {@code attend --windows FILE.json}, in one of three formats:
 * <ul>
 * <li>one [K_t, K_h, K_w] triple per head, in head order, in tiles: {@code {"windows": [[3,3,3], [5,6,10], ...]}};</li>
 * <li>a strategy written by {@code tileattn search} (see {@link tileattn.search.StrategyJson}); it names its tile,
 * which is then the default tile;</li>
 * <li>a strategy in the STA authors' format, {@code {"step_layer_head": [wt, wh, ww], ...}}.</li>
 * </ul>
 * A strategy holds windows for many steps and layers: {@code --step} and {@code --layer} pick one attention call;
 * either may be left out when the strategy has a single step configuration or a single layer.
 */
final class WindowsFile {

    /** The layout an attend call runs on and the window of each of its heads. */
    record Choice(TokenLayout layout, Window[] perHead, String description) {
    }

    private WindowsFile() {
    }

    /**
     * @param tile  the --tile option, or null for the strategy's own tile (else attend's STA default)
     * @param step  the --step option, or null
     * @param layer the --layer option, or null
     */
    static Choice read(Path path, Shape3 video, Shape3 tile, int textLength, Integer step, Integer layer) {
        StrategyFiles.Parsed parsed = new StrategyFiles.Parsed(path.toString(), tree(path));
        if (parsed.format() == StrategyFiles.Format.OTHER) {
            if (step != null || layer != null) {
                throw new IllegalArgumentException(path + ": --step and --layer apply to strategy files, and this file "
                        + "lists one window per head");
            }
            TokenLayout layout = TokenLayout.of(video, tile != null ? tile : AttendCommand.STA_TILE, textLength);
            return new Choice(layout, perHead(path, parsed.root()).toArray(Window[]::new), "per-head windows from " + path);
        }
        Shape3 ownTile = parsed.ownLayout().map(l -> l.grid().tile()).orElse(null);
        if (tile != null && ownTile != null && !tile.equals(ownTile)) {
            throw new IllegalArgumentException(path + ": the strategy's windows are in tiles of " + ownTile + " but --tile is "
                    + tile + "; leave --tile out to use the strategy's");
        }
        Shape3 tileShape = tile != null ? tile : ownTile != null ? ownTile : AttendCommand.STA_TILE;
        TokenLayout layout = TokenLayout.of(video, tileShape, textLength);
        WindowStrategy strategy = parsed.strategy(layout);
        try {
            strategy.checkFits(layout.grid().tiles());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": does not fit video " + video + " in tiles of " + tileShape + ": "
                    + e.getMessage(), e);
        }
        int s = pick(step, strategy.stepRanges().size() == 1, strategy.steps(), "--step", "step", path,
                "its windows change over its " + strategy.steps() + " steps");
        int l = pick(layer, strategy.layers() == 1, strategy.layers(), "--layer", "layer", path,
                "it has " + strategy.layers() + " layers");
        return new Choice(layout, strategy.windowsFor(s, l), "strategy " + path + " at step " + s + ", layer " + l);
    }

    private static int pick(Integer chosen, boolean onlyOne, int count, String option, String what, Path path, String why) {
        if (chosen == null) {
            if (!onlyOne) {
                throw new IllegalArgumentException(path + ": " + why + "; choose one with " + option + " (0.." + (count - 1) + ")");
            }
            return 0;
        }
        if (chosen < 0 || chosen >= count) {
            throw new IllegalArgumentException(path + ": " + option + " " + chosen + " is outside the strategy's " + count
                    + " " + what + "s (0.." + (count - 1) + ")");
        }
        return chosen;
    }

    /** The per-head list format alone. */
    /**
     * The strategy in a file, for a run over {@code video} tokens without text, or empty when the file lists one
     * window per head. A strategy that names its tile must name {@code tile}.
     */
    static Optional<WindowStrategy> strategy(Path path, Shape3 video, Shape3 tile) {
        StrategyFiles.Parsed parsed = new StrategyFiles.Parsed(path.toString(), tree(path));
        if (parsed.format() == StrategyFiles.Format.OTHER) {
            return Optional.empty();
        }
        Shape3 ownTile = parsed.ownLayout().map(l -> l.grid().tile()).orElse(null);
        if (ownTile != null && !ownTile.equals(tile)) {
            throw new IllegalArgumentException(path + ": the strategy's windows are in tiles of " + ownTile
                    + " but the STA tile is " + tile + "; pass the strategy's tile");
        }
        TokenLayout layout = TokenLayout.of(video, tile, 0);
        WindowStrategy strategy = parsed.strategy(layout);
        try {
            strategy.checkFits(layout.grid().tiles());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": does not fit " + video + " tokens in tiles of " + tile + ": "
                    + e.getMessage(), e);
        }
        return Optional.of(strategy);
    }

    static List<Window> read(Path path) {
        return perHead(path, tree(path));
    }

    private static JsonNode tree(Path path) {
        try {
            return new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).readTree(Files.readString(path));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(path + ": no such windows file");
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(path + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new IllegalArgumentException(path + ": cannot read: " + e.getMessage());
        }
    }

    private static List<Window> perHead(Path path, JsonNode root) {
        JsonNode list = root == null ? null : root.get("windows");
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw new IllegalArgumentException(path + ": expected {\"windows\": [[t,h,w], ...]} with one window per head, "
                    + "a strategy from tileattn search, or an STA authors' strategy {\"step_layer_head\": [t,h,w], ...}");
        }
        List<Window> windows = new ArrayList<>();
        for (int head = 0; head < list.size(); head++) {
            JsonNode w = list.get(head);
            if (!w.isArray() || w.size() != 3 || !isPositiveInt(w.get(0)) || !isPositiveInt(w.get(1))
                    || !isPositiveInt(w.get(2))) {
                throw new IllegalArgumentException(path + ": window of head " + head + " must be three positive "
                        + "integers [t,h,w], got " + w);
            }
            windows.add(new Window(w.get(0).intValue(), w.get(1).intValue(), w.get(2).intValue()));
        }
        return windows;
    }

    private static boolean isPositiveInt(JsonNode n) {
        return n.isInt() && n.intValue() > 0;
    }
}
