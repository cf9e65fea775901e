package tileattn.search;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

class StrategyJsonTest {

    static final TokenLayout LAYOUT = TokenLayout.of(new Shape3(7, 10, 13), new Shape3(2, 3, 4), 5);

    /** Steps 0-1 dense, step 2 one window everywhere, steps 3-4 the same random windows, steps 5-6 random. */
    static WindowStrategy mixed(Random rnd, int layers, int heads) {
        var candidates = CandidateWindows.all(LAYOUT.grid().tiles());
        Window full = Window.full(LAYOUT.grid().tiles());
        Window[][][] w = new Window[7][layers][heads];
        for (int s = 0; s < 7; s++) {
            for (int l = 0; l < layers; l++) {
                for (int h = 0; h < heads; h++) {
                    w[s][l][h] = s < 2 ? full : s == 2 ? new Window(3, 1, 3)
                            : s == 4 ? w[3][l][h] : candidates.get(rnd.nextInt(candidates.size()));
                }
            }
        }
        return new WindowStrategy(LAYOUT, w);
    }

    @Test
    void roundTripsEveryKindOfRange() {
        Random rnd = new Random(5);
        WindowStrategy strategy = mixed(rnd, 3, 4);
        String json = StrategyJson.toJson(strategy);
        WindowStrategy back = StrategyJson.parse(json, "test.json");
        assertEquals(strategy, back);
        assertEquals(LAYOUT, back.layout());
        assertEquals(5, strategy.stepRanges().size(), strategy.stepRanges().toString());
        assertTrue(json.contains("{\"steps\": [0, 1], \"full\": true}"), json);
        assertTrue(json.contains("{\"steps\": [2, 2], \"window\": [3, 1, 3]}"), json);
        assertTrue(json.contains("{\"steps\": [3, 4], \"windows\": ["), json);
        assertTrue(back.isFull(0) && back.isFull(1) && !back.isFull(2));
        for (int s = 0; s < 7; s++) {
            for (int l = 0; l < 3; l++) {
                assertArrayEquals(strategy.windowsFor(s, l), back.windowsFor(s, l));
            }
        }
    }

    @Test
    void textLengthIsOptional() {
        String json = """
                {"format": "tileattn.sta-strategy", "version": 1, "video": [4, 4, 4], "tile": [2, 2, 2],
                 "steps": 1, "layers": 1, "heads": 2, "ranges": [{"steps": [0, 0], "windows": [[[1,1,1], [2,2,2]]]}]}""";
        WindowStrategy s = StrategyJson.parse(json, "x.json");
        assertEquals(0, s.layout().textLength());
        assertArrayEquals(new Window[]{new Window(1, 1, 1), new Window(2, 2, 2)}, s.windowsFor(0, 0));
    }

    @Test
    void errorsNameTheFileAndThePlace() {
        String head = "{\"format\": \"tileattn.sta-strategy\", \"version\": 1, \"video\": [8, 12, 20], \"tile\": [2, 2, 2],"
                + " \"steps\": 3, \"layers\": 2, \"heads\": 2, \"ranges\": ";
        assertMessage(head + "[{\"steps\": [0, 0], \"full\": true}, {\"steps\": [2, 2], \"full\": true}]}", "ranges[1].steps");
        assertMessage(head + "[{\"steps\": [0, 1], \"full\": true}]}", "end at step 1");
        assertMessage(head + "[{\"steps\": [0, 2], \"window\": [3, 3]}]}", "ranges[0].window must be an array of 3 integers");
        assertMessage(head + "[{\"steps\": [0, 2], \"full\": true, \"window\": [3, 3, 3]}]}", "exactly one of");
        assertMessage(head + "[{\"steps\": [0, 2], \"windows\": [[[1,1,1],[1,1,1]]]}]}", "ranges[0].windows must be an array of 2 layers");
        assertMessage(head + "[{\"steps\": [0, 2], \"windows\": [[[1,1,1],[1,1,1]], [[1,1,1],[1,4,3]]]}]}",
                "step 0, layer 1, head 1: window 1x4x3 has an even extent");
        assertMessage(head + "[{\"steps\": [0, 2], \"window\": [5, 3, 3]}]}", "larger than the tile grid");
        assertMessage(head.replace("\"tile\": [2, 2, 2],", "") + "[]}", "missing \"tile\"");
        assertMessage(head + "[{\"steps\": [0, 2], \"full\": true}], \"steps\": 4}", "Duplicate field");
        assertMessage("{\"format\": \"something else\"}", "\"format\" must be");
        assertMessage("{not json", "not valid JSON");
    }

    private static void assertMessage(String json, String expected) {
        var e = assertThrows(IllegalArgumentException.class, () -> StrategyJson.parse(json, "bad.json"));
        assertTrue(e.getMessage().startsWith("bad.json"), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void strategyValidationNamesStepLayerHead() {
        Window[][][] w = new Window[2][2][3];
        for (Window[][] step : w) {
            for (Window[] layer : step) {
                Arrays.fill(layer, new Window(1, 1, 1));
            }
        }
        w[1][0][2] = new Window(9, 1, 1);
        var e = assertThrows(IllegalArgumentException.class, () -> new WindowStrategy(LAYOUT, w));
        assertTrue(e.getMessage().startsWith("step 1, layer 0, head 2: "), e.getMessage());
        w[1][0][2] = null;
        e = assertThrows(IllegalArgumentException.class, () -> new WindowStrategy(LAYOUT, w));
        assertTrue(e.getMessage().contains("step 1, layer 0, head 2 has no window"), e.getMessage());

        WindowStrategy ok = WindowStrategy.uniform(LAYOUT, 2, 2, 3, new Window(3, 3, 3));
        e = assertThrows(IllegalArgumentException.class, () -> ok.checkFits(new Shape3(2, 2, 2)));
        assertTrue(e.getMessage().startsWith("step 0, layer 0, head 0: window 3x3x3 is larger"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.windowsFor(2, 0));
        assertTrue(e.getMessage().contains("step 2 is outside"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ok.windowsFor(0, -1));
        assertTrue(e.getMessage().contains("layer -1 is outside"), e.getMessage());
    }
}
