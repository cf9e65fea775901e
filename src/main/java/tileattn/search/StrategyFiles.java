package tileattn.search;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import tileattn.layout.TokenLayout;

/** Reads a strategy file in either format, telling them apart by their content. */
public final class StrategyFiles {

    private static final ObjectMapper MAPPER = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private StrategyFiles() {
    }

    /**
     * @param layout the layout for files that do not name one (the STA authors' format); a file in tileattn's
     *               format keeps its own layout
     */
    public static WindowStrategy read(Path file, TokenLayout layout) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException(file + ": no such strategy file");
        }
        JsonNode root;
        try {
            root = MAPPER.readTree(Files.readString(file));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root != null && StrategyJson.isThisFormat(root)) {
            return StrategyJson.fromTree(root, file.toString());
        }
        if (root != null && StaAuthorsJson.isThisFormat(root)) {
            return StaAuthorsJson.fromTree(root, file.toString(), layout);
        }
        throw new IllegalArgumentException(file + ": neither a tileattn strategy (\"format\": \"" + StrategyJson.FORMAT
                + "\") nor an STA authors' strategy ({\"step_layer_head\": [wt, wh, ww], ...})");
    }
}
