package tileattn.search;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import tileattn.layout.TokenLayout;

/** Reads a strategy file in either format, telling them apart by their content. */
public final class StrategyFiles {

    private static final ObjectMapper MAPPER = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private StrategyFiles() {
    }

    /** The formats a JSON document can be in. */
    public enum Format {
        /** {@link StrategyJson}: carries its own layout. */
        TILEATTN,
        /** {@link StaAuthorsJson}: needs the layout from elsewhere. */
        STA_AUTHORS,
        /** Neither. */
        OTHER
    }

    /** A parsed JSON document that may hold a strategy. */
    public record Parsed(String source, JsonNode root) {

        public Format format() {
            if (root != null && StrategyJson.isThisFormat(root)) {
                return Format.TILEATTN;
            }
            if (root != null && StaAuthorsJson.isThisFormat(root)) {
                return Format.STA_AUTHORS;
            }
            return Format.OTHER;
        }

        /** The layout a tileattn strategy file names; empty for the other formats. */
        public Optional<TokenLayout> ownLayout() {
            return format() == Format.TILEATTN ? Optional.of(StrategyJson.layoutOf(root, source)) : Optional.empty();
        }

        /**
         * @param layout the layout for the STA authors' format, which names none; a tileattn file keeps its own
         * @throws IllegalArgumentException naming the source when it holds no strategy or a faulty one
         */
        public WindowStrategy strategy(TokenLayout layout) {
            return switch (format()) {
                case TILEATTN -> StrategyJson.fromTree(root, source);
                case STA_AUTHORS -> StaAuthorsJson.fromTree(root, source, layout);
                case OTHER -> throw new IllegalArgumentException(source + ": neither a tileattn strategy (\"format\": \""
                        + StrategyJson.FORMAT + "\") nor an STA authors' strategy ({\"step_layer_head\": [wt, wh, ww], ...})");
            };
        }
    }

    public static Parsed parse(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": no such strategy file");
        }
        try {
            return new Parsed(file.toString(), MAPPER.readTree(Files.readString(file)));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /**
     * @param layout the layout for files that do not name one (the STA authors' format); a file in tileattn's
     *               format keeps its own layout
     */
    public static WindowStrategy read(Path file, TokenLayout layout) throws IOException {
        return parse(file).strategy(layout);
    }
}
