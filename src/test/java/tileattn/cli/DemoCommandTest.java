package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.Window;

class DemoCommandTest {

    /** The relative L2 error printed in the last column of the table row whose setting starts with {@code setting}. */
    private static double errorOf(String out, String method, String setting) {
        String row = out.lines().filter(l -> l.startsWith(method) && l.substring(method.length()).strip()
                .startsWith(setting)).findFirst().orElseThrow(() -> new AssertionError("no row " + setting + " in\n" + out));
        String[] cells = row.trim().split("\\s+");
        return Double.parseDouble(cells[cells.length - 1]);
    }

    @Test
    void smallDemoPrintsEveryMethodWithMeaningfulErrors() {
        CliRun run = CliRun.of("demo", "--video", "4,8,8", "--heads", "2", "--head-dim", "16", "--sta-tile", "2,4,4",
                "--window", "2,2,2", "--window", "1,1,1", "--vsa-tile", "2,4,4", "--topk", "8", "--topk", "2",
                "--text-length", "3");
        assertEquals(0, run.exitCode(), run.err());
        String out = run.out();
        assertTrue(out.contains("rel L2 err vs dense"), out);
        assertEquals(0, errorOf(out, "dense", "all 259 keys"));
        double whole = errorOf(out, "sta", "window 2x2x2");
        double tiny = errorOf(out, "sta", "window 1x1x1");
        assertTrue(whole < 1e-5, "the whole grid is dense attention: " + whole);
        assertTrue(tiny > 1e-3 && tiny < 1, "a one-tile window misses some of the attention: " + tiny);
        double allTiles = errorOf(out, "vsa", "top-8 of 8 tiles");
        double twoTiles = errorOf(out, "vsa", "top-2 of 8 tiles");
        assertTrue(allTiles < 1e-5, "fine attention over all tiles with gate 0 is dense: " + allTiles);
        assertTrue(twoTiles > allTiles && twoTiles < 1, "top-2: " + twoTiles);
        assertTrue(out.contains("without text tokens"), out);
    }

    @Test
    void defaultWindowsFitAnyGrid() {
        TileGrid grid = new TileGrid(new Shape3(12, 24, 24), new Shape3(4, 6, 6)); // 3x4x4
        List<Window> windows = DefaultWindows.capped(grid, new int[]{3, 3, 3}, new int[]{1, 3, 3}, new int[]{1, 1, 1});
        assertEquals(List.of(new Window(3, 3, 3), new Window(1, 3, 3), new Window(1, 1, 1)), windows);
        TileGrid small = new TileGrid(new Shape3(2, 8, 8), new Shape3(2, 4, 4)); // 1x2x2
        List<Window> capped = DefaultWindows.capped(small, new int[]{3, 3, 3}, new int[]{1, 3, 3}, new int[]{1, 1, 1});
        assertEquals(List.of(new Window(1, 2, 2), new Window(1, 1, 1)), capped);
        capped.forEach(w -> assertDoesNotThrow(() -> w.checkFits(small.tiles())));
    }

    @Test
    void theDemoSaysWhichDeviceRan() {
        CliRun run = CliRun.of("demo", "--device", "cpu", "--video", "2,8,8", "--heads", "1", "--head-dim", "8",
                "--sta-tile", "2,4,4", "--window", "1,1,1", "--vsa-tile", "2,4,4", "--topk", "2");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().startsWith("device: CPU (as asked with --device cpu)"), run.out());
        assertTrue(run.out().lines().filter(l -> l.startsWith("sta") || l.startsWith("vsa") || l.startsWith("dense"))
                .allMatch(l -> l.contains(" cpu ")), run.out());
        String d16 = CliRun.of("demo", "--device", "gpu", "--head-dim", "16").assertOneLineError();
        assertTrue(d16.contains("--device gpu: the GPU kernels take head dim 64 or 128, not 16"), d16);
    }

    @Test
    void badDemoOptions() {
        assertTrue(CliRun.of("demo", "--heads", "0").assertOneLineError().contains("--heads"));
        assertTrue(CliRun.of("demo", "--video", "4,8,8", "--sta-tile", "2,4,4", "--window", "3,1,1")
                .assertOneLineError().contains("larger"));
    }
}
