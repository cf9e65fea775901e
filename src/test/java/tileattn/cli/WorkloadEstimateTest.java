package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.search.WindowStrategy;

class WorkloadEstimateTest {

    private static final TokenLayout LAYOUT = TokenLayout.of(new Shape3(10, 12, 20), new Shape3(2, 2, 2), 3);   // grid 5x6x10
    private static final Window FULL = new Window(5, 6, 10), A = new Window(3, 3, 3), B = new Window(1, 6, 10),
            C = new Window(5, 1, 1);

    /** 3 steps x 2 layers x 4 heads: step 0 full, later steps mixing up to three windows. */
    private static WindowStrategy strategy() {
        Window[][][] w = {
            {{FULL, FULL, FULL, FULL}, {FULL, FULL, FULL, FULL}},
            {{A, A, B, B}, {A, A, A, A}},
            {{A, B, C, C}, {A, B, C, A}},
        };
        return new WindowStrategy(LAYOUT, w);
    }

    @Test
    void totalsAreTheMeanOverHeadsSummedOverCalls() {
        WorkloadEstimate e = new WorkloadEstimate(strategy());
        Map<Window, Double> ms = Map.of(FULL, 100.0, A, 10.0, B, 30.0, C, 7.0);
        assertEquals(List.of(A, FULL, B, C), e.distinctWindows(), "most used first");
        assertEquals((10 + 10 + 30 + 30) / 4.0, e.callMillis(new WorkloadEstimate.Call(1, 0), ms), 1e-12);
        double calls = 100 + 100 + (10 + 10 + 30 + 30) / 4.0 + 10 + (10 + 30 + 7 + 7) / 4.0 + (10 + 30 + 7 + 10) / 4.0;
        assertEquals(calls / 1000, e.strategySeconds(ms), 1e-12);
        assertEquals(6 * 120.0 / 1000, e.denseSeconds(120), 1e-12);
        assertEquals(8, e.uses(FULL));
        assertEquals(4, e.uses(B));
        assertEquals(0, e.uses(new Window(1, 1, 1)));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> e.strategySeconds(Map.of(FULL, 1.0, A, 1.0, B, 1.0)));
        assertTrue(missing.getMessage().contains("5x1x1"), missing.getMessage());
    }

    @Test
    void mixedCallsPreferTheMostWindowsAndSkipRepeatedSets() {
        WorkloadEstimate e = new WorkloadEstimate(strategy());
        assertEquals(List.of(new WorkloadEstimate.Call(2, 0), new WorkloadEstimate.Call(2, 1), new WorkloadEstimate.Call(1, 0)),
                e.mixedCalls(5), "three windows first (earliest first), then two; calls of one window never");
        assertEquals(List.of(new WorkloadEstimate.Call(2, 0), new WorkloadEstimate.Call(2, 1)), e.mixedCalls(2));
        assertEquals(List.of(), e.mixedCalls(0));
        Window[][][] same = {{{A, B}, {A, B}}};
        assertEquals(List.of(new WorkloadEstimate.Call(0, 0)), new WorkloadEstimate(new WindowStrategy(LAYOUT, same)).mixedCalls(3),
                "the second call repeats the first's window set");
    }
}
