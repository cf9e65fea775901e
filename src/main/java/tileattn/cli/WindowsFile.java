package tileattn.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import tileattn.mask.Window;

/**
 * Per-head STA windows from a JSON file {@code {"windows": [[3,3,3], [5,6,10], ...]}}: one [K_t, K_h, K_w]
 * triple per head, in head order, in tiles.
 */
final class WindowsFile {

    private WindowsFile() {
    }

    static List<Window> read(Path path) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(path));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(path + ": no such windows file");
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(path + ": not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new IllegalArgumentException(path + ": cannot read: " + e.getMessage());
        }
        JsonNode list = root == null ? null : root.get("windows");
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw new IllegalArgumentException(path + ": expected {\"windows\": [[t,h,w], ...]} with one window per head");
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
