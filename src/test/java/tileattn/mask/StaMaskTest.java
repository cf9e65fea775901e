package tileattn.mask;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;

class StaMaskTest {

    @Test
    void tileListsMatchTheLiteralRule() {
        Random rnd = new Random(11);
        for (int trial = 0; trial < 300; trial++) {
            TileGrid grid = new TileGrid(new Shape3(1 + rnd.nextInt(12), 1 + rnd.nextInt(12), 1 + rnd.nextInt(12)),
                    new Shape3(1 + rnd.nextInt(3), 1 + rnd.nextInt(3), 1 + rnd.nextInt(3)));
            Shape3 n = grid.tiles();
            Window window = new Window(randomExtent(rnd, n.t()), randomExtent(rnd, n.h()), randomExtent(rnd, n.w()));
            TileLists lists = StaMask.tileLists(grid, window);
            for (int q = 0; q < grid.tileCount(); q++) {
                int expected = 0;
                for (int k = 0; k < grid.tileCount(); k++) {
                    if (StaMask.allows(grid, window, q, k)) {
                        assertEquals(k, lists.get(q, expected), "KV tile list of query tile " + q);
                        expected++;
                    }
                }
                assertEquals(expected, lists.count(q));
                assertEquals(window.tileVolume(n), lists.count(q), "windows keep their full size at the edges");
            }
        }
    }

    private static int randomExtent(Random rnd, int n) {
        if (rnd.nextInt(4) == 0) {
            return n;
        }
        int k = 1 + 2 * rnd.nextInt((n + 1) / 2);
        return Math.min(k, n % 2 == 1 ? n : n - 1);
    }

    @Test
    void clampedCentreAtTheEdges() {
        assertEquals(0, Window.windowStart(0, 3, 10));
        assertEquals(0, Window.windowStart(1, 3, 10));
        assertEquals(4, Window.windowStart(5, 3, 10));
        assertEquals(7, Window.windowStart(9, 3, 10));
        assertEquals(0, Window.windowStart(3, 6, 6));
    }

    @Test
    void rejectsEvenAndOversizedWindows() {
        Shape3 grid = new Shape3(5, 6, 10);
        assertDoesNotThrow(() -> new Window(5, 6, 10).checkFits(grid));
        assertDoesNotThrow(() -> new Window(3, 3, 3).checkFits(grid));
        var even = assertThrows(IllegalArgumentException.class, () -> new Window(3, 4, 3).checkFits(grid));
        assertTrue(even.getMessage().contains("even"), even.getMessage());
        var big = assertThrows(IllegalArgumentException.class, () -> new Window(7, 3, 3).checkFits(grid));
        assertTrue(big.getMessage().contains("larger"), big.getMessage());
    }

    @Test
    void sparsityOfThePublishedCase() {
        TileGrid grid = new TileGrid(new Shape3(30, 48, 80), new Shape3(6, 8, 8));
        assertEquals(1 - 27.0 / 300, StaMask.sparsity(grid, new Window(3, 3, 3)), 1e-12);
        assertEquals(0.0, StaMask.sparsity(grid, new Window(5, 6, 10)), 1e-12);
    }
    @Test
    void transposeListsEachKvTileReaders() {
        TileGrid grid = new TileGrid(new Shape3(7, 9, 11), new Shape3(2, 2, 3));
        TileLists lists = StaMask.tileLists(grid, new Window(3, 1, 3));
        TileLists readers = lists.transpose(grid.tileCount());
        assertEquals(lists.totalPairs(), readers.totalPairs());
        for (int kv = 0; kv < grid.tileCount(); kv++) {
            int expected = 0;
            for (int q = 0; q < grid.tileCount(); q++) {
                if (StaMask.allows(grid, new Window(3, 1, 3), q, kv)) {
                    assertEquals(q, readers.get(kv, expected++), "readers of KV tile " + kv + " ascend");
                }
            }
            assertEquals(expected, readers.count(kv));
        }
    }
}
