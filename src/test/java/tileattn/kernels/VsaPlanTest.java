package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;

/** The host side of VSA's GPU plan: query blocks, the choice of their size, and k from a sparsity. */
class VsaPlanTest {

    @Test
    void queryBlocksCoverEveryTokenOnceAndNeverCrossATile() {
        for (TileGrid grid : new TileGrid[]{new TileGrid(new Shape3(21, 30, 52), new Shape3(4, 4, 4)),
                new TileGrid(new Shape3(13, 17, 19), new Shape3(6, 8, 8))}) {
            int[] starts = grid.tileStarts();
            for (int rows : new int[]{64, 128}) {
                int[] blocks = VsaPlan.queryBlockTable(starts, rows);
                boolean[] seen = new boolean[grid.videoTokens()];
                int previousSize = Integer.MAX_VALUE;
                for (int b = 0; b < blocks.length / 4; b++) {
                    int start = blocks[4 * b], count = blocks[4 * b + 1], tile = blocks[4 * b + 2];
                    assertTrue(count >= 1 && count <= rows, "block " + b + " has " + count + " rows");
                    assertTrue(start >= starts[tile] && start + count <= starts[tile + 1], "block " + b + " leaves tile " + tile);
                    assertTrue(grid.tileTokens(tile) <= previousSize, "tiles with more tokens come first");
                    previousSize = grid.tileTokens(tile);
                    for (int r = start; r < start + count; r++) {
                        assertFalse(seen[r], "token " + r + " in two blocks");
                        seen[r] = true;
                    }
                }
                for (int r = 0; r < seen.length; r++) {
                    assertTrue(seen[r], "token " + r + " in no block");
                }
            }
        }
    }

    @Test
    void sixtyFourRowBlocksHalveTheRowsComputedOnFourCubedTiles() {
        TileGrid wan = new TileGrid(new Shape3(21, 30, 52), new Shape3(4, 4, 4));
        assertEquals(624, wan.tileCount());
        assertEquals(624L * 64, VsaPlan.computedRows(wan, 64));
        assertEquals(624L * 128, VsaPlan.computedRows(wan, 128));
        TileGrid big = new TileGrid(new Shape3(12, 16, 16), new Shape3(6, 8, 8));  // 384-token tiles: no difference
        assertEquals(VsaPlan.computedRows(big, 64), VsaPlan.computedRows(big, 128));
    }

    @Test
    void topKFromSparsityFollowsTheReferenceRule() {
        assertEquals(78, VsaKernels.topKFromSparsity(0.875, 624));
        assertEquals(1, VsaKernels.topKFromSparsity(0.999, 624));
        assertEquals(624, VsaKernels.topKFromSparsity(0, 624));
        assertEquals(1, VsaKernels.topKFromSparsity(0.5, 1));
        assertThrows(IllegalArgumentException.class, () -> VsaKernels.topKFromSparsity(1.0, 10));
        assertThrows(IllegalArgumentException.class, () -> VsaKernels.topKFromSparsity(-0.1, 10));
        assertThrows(IllegalArgumentException.class, () -> VsaKernels.topKFromSparsity(Double.NaN, 10));
    }
}
