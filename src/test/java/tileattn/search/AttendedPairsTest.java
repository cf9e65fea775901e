package tileattn.search;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

class AttendedPairsTest {

    @Test
    void countsEveryAllowedTokenPairOfPartialTilesAndText() {
        Random rnd = new Random(41);
        for (int trial = 0; trial < 40; trial++) {
            TokenLayout layout = TokenLayout.of(new Shape3(1 + rnd.nextInt(6), 1 + rnd.nextInt(7), 1 + rnd.nextInt(7)),
                    new Shape3(1 + rnd.nextInt(3), 1 + rnd.nextInt(3), 1 + rnd.nextInt(3)), rnd.nextInt(5));
            TileGrid grid = layout.grid();
            List<Window> all = CandidateWindows.all(grid.tiles());
            Window w = all.get(rnd.nextInt(all.size()));
            int n = grid.videoTokens(), s = layout.sequenceLength();
            int[] toTile = layout.rasterToTileOrder();
            int[] tileOf = new int[n];
            for (int t = 0; t < grid.tileCount(); t++) {
                for (int i = grid.tileStart(t); i < grid.tileStart(t) + grid.tileTokens(t); i++) {
                    tileOf[i] = t;
                }
            }
            long expected = 0;
            for (int i = 0; i < s; i++) {
                for (int j = 0; j < s; j++) {
                    boolean video = i < n && j < n;
                    if (!video || StaMask.allows(grid, w, tileOf[toTile[i]], tileOf[toTile[j]])) {
                        expected++;
                    }
                }
            }
            assertEquals(expected, AttendedPairs.of(layout, w), layout.grid() + " window " + w);
            assertEquals((long) s * s, AttendedPairs.of(layout, Window.full(grid.tiles())));
            assertEquals((long) s * s, AttendedPairs.dense(layout));
        }
    }

    @Test
    void defaultCandidatesAreEveryValidWindow() {
        Shape3 grid = new Shape3(5, 6, 10);
        List<Window> all = CandidateWindows.all(grid);
        assertEquals(3 * 4 * 6, all.size(), "t in {1,3,5}, h in {1,3,5,6}, w in {1,3,5,7,9,10}");
        assertTrue(all.contains(new Window(5, 6, 10)));
        assertTrue(all.contains(new Window(1, 6, 9)));
        for (int t = 1; t <= 6; t++) {
            for (int h = 1; h <= 7; h++) {
                for (int w = 1; w <= 11; w++) {
                    Window win = new Window(t, h, w);
                    boolean fits;
                    try {
                        win.checkFits(grid);
                        fits = true;
                    } catch (IllegalArgumentException e) {
                        fits = false;
                    }
                    assertEquals(fits, all.contains(win), win.toString());
                }
            }
        }
        assertEquals(List.of(new Window(3, 3, 3), new Window(5, 6, 1)), CandidateWindows.parse("3x3x3, 5x6x1;3X3X3", grid));
        var e = assertThrows(IllegalArgumentException.class, () -> CandidateWindows.parse("3x3x3,7x1x1", grid));
        assertTrue(e.getMessage().contains("candidate 7x1x1 does not fit the tile grid 5x6x10"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CandidateWindows.parse("3,3,3", grid));
        assertTrue(e.getMessage().contains("candidate '3' is not a window"), e.getMessage());
    }
}
