package tileattn.search;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

class StaAuthorsJsonTest {

    static final Path HUNYUAN = Path.of("..", "shared", "reference", "mask_strategy_hunyuan.json");
    static final TokenLayout HUNYUAN_LAYOUT = TokenLayout.of(new Shape3(30, 48, 80), new Shape3(6, 8, 8), 256);

    @Test
    void readsThePublishedHunyuanStrategy() throws Exception {
        Assumptions.assumeTrue(Files.isRegularFile(HUNYUAN), "the shared reference data is not next to this checkout");
        WindowStrategy s = StaAuthorsJson.read(HUNYUAN, HUNYUAN_LAYOUT);
        assertEquals(50, s.steps());
        assertEquals(60, s.layers());
        assertEquals(24, s.heads());
        Window full = new Window(5, 6, 10);
        assertEquals(full, Window.full(s.grid().tiles()));
        for (int step = 0; step < 50; step++) {
            assertEquals(step < 15, s.isFull(step), "step " + step);
        }
        assertEquals(Set.of(full, new Window(5, 3, 3), new Window(1, 6, 10), new Window(3, 3, 5), new Window(5, 1, 10),
                new Window(5, 6, 1)), s.windowCounts().keySet());
        assertEquals(72_000, s.windowCounts().values().stream().mapToInt(Integer::intValue).sum());
        assertEquals(15 * 60 * 24, s.windowCounts().get(full));
        assertEquals(Set.copyOf(CandidateWindows.STA_HUNYUAN),
                s.windowCounts().keySet().stream().filter(w -> !w.equals(full)).collect(Collectors.toSet()));
        assertEquals(36, s.stepRanges().size(), "steps 0-14 share one range, every later step differs");

        assertEquals(Files.readString(HUNYUAN), StaAuthorsJson.toJson(s), "written back byte for byte");
        assertEquals(s, StrategyJson.parse(StrategyJson.toJson(s), "ours"));
        // 2.3876 was computed independently from the JSON with the pairs formula (text queries read all S keys).
        assertEquals(2.3876, new StrategyCost(s).speedup(), 1e-4);
    }

    @Test
    void roundTripsRandomStrategies(@TempDir Path dir) throws Exception {
        Random rnd = new Random(3);
        for (int trial = 0; trial < 5; trial++) {
            WindowStrategy s = StrategyJsonTest.mixed(rnd, 1 + rnd.nextInt(4), 1 + rnd.nextInt(5));
            Path file = dir.resolve("s" + trial + ".json");
            StaAuthorsJson.write(s, file);
            assertEquals(s, StaAuthorsJson.read(file, s.layout()));
            assertEquals(s, StrategyFiles.read(file, s.layout()));
            StrategyJson.write(s, file);
            assertEquals(s, StrategyFiles.read(file, TokenLayout.of(new Shape3(1, 1, 1), new Shape3(1, 1, 1), 0)),
                    "a tileattn file keeps its own layout");
        }
    }

    @Test
    void errorsNameTheKey() {
        TokenLayout layout = TokenLayout.of(new Shape3(10, 12, 20), new Shape3(2, 2, 2), 0);
        assertMessage("{\"0_0_0\":[5,6,10],\"0_0_1\":[5,6,10],\"1_0_0\":[5,6,10]}", layout, "first missing: \"1_0_1\"");
        assertMessage("{\"0_0_0\":[5,6,10],\"0_0\":[5,6,10]}", layout, "key \"0_0\" is not \"step_layer_head\"");
        assertMessage("{\"0_0_0\":[5,6,10],\"0_0_1\":[5,6]}", layout, "\"0_0_1\" must be an array of 3 integers");
        assertMessage("{\"0_0_0\":[5,6,10],\"0_0_1\":[5,4,3]}", layout, "step 0, layer 0, head 1: window 5x4x3 has an even extent");
        assertMessage("{\"0_0_0\":[5,6,10],\"0_0_0\":[5,6,10]}", layout, "Duplicate field");
        assertMessage("[]", layout, "expected a non-empty JSON object");
    }

    private static void assertMessage(String json, TokenLayout layout, String expected) {
        var e = assertThrows(IllegalArgumentException.class, () -> StaAuthorsJson.parse(json, "bad.json", layout));
        assertTrue(e.getMessage().startsWith("bad.json"), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void unknownFormatsAreNamed(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("x.json");
        Files.writeString(file, "{\"windows\": 3}");
        var e = assertThrows(IllegalArgumentException.class, () -> StrategyFiles.read(file, HUNYUAN_LAYOUT));
        assertTrue(e.getMessage().contains("neither a tileattn strategy"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> StrategyFiles.read(dir.resolve("missing.json"), HUNYUAN_LAYOUT));
        assertTrue(e.getMessage().contains("no such strategy file"), e.getMessage());
    }
}
