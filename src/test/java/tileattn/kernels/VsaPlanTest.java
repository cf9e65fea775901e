package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;

/** The host side of VSA's GPU plan: query blocks, the choice of their size, packed tiles, and k from a sparsity. */
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
    void packedGroupsAreRunsOfWarpSizedTilesFillingAtMostOneBlock() {
        for (TileGrid grid : new TileGrid[]{new TileGrid(new Shape3(21, 30, 52), new Shape3(4, 4, 4)),
                new TileGrid(new Shape3(5, 6, 20), new Shape3(4, 4, 4)), new TileGrid(new Shape3(9, 10, 11), new Shape3(4, 4, 4)),
                new TileGrid(new Shape3(4, 24, 96), new Shape3(1, 4, 4))}) {
            int[] starts = grid.tileStarts();
            int[] groups = PackedTiles.groups(starts);
            for (int g = 0; g < groups.length / 2; g++) {
                int first = groups[2 * g], members = groups[2 * g + 1];
                assertTrue(members >= 2 && members <= 4, grid + " group " + g + " has " + members + " tiles");
                for (int m = 0; m < members; m++) {
                    int length = grid.tileTokens(first + m);
                    assertTrue(length % 16 == 0 && length < 64, grid + " tile " + (first + m) + " of " + length);
                }
                assertTrue(starts[first + members] - starts[first] <= 64, grid + " group " + g + " overfills a block");
                assertTrue(g == 0 || groups[2 * g - 2] + groups[2 * g - 1] <= first, "groups overlap");
            }
            int[] blocks = PackedTiles.blockTable(starts, groups, VsaPlan.queryBlockTable(starts, 64));
            boolean[] seen = new boolean[grid.videoTokens()];
            for (int b = 0; b < blocks.length / 4; b++) {
                int start = blocks[4 * b], count = blocks[4 * b + 1], slot = blocks[4 * b + 2], packing = blocks[4 * b + 3];
                boolean packed = b < groups.length / 2;
                assertEquals(packed ? grid.tileCount() + b : slot, slot, "groups' blocks come first, in order");
                assertEquals(packed, packing != 0, "block " + b + " packing " + packing);
                for (int r = start; r < start + count; r++) {
                    assertFalse(seen[r], "token " + r + " in two blocks");
                    seen[r] = true;
                    if (packed) {
                        int member = packing >> (2 * ((r - start) / 16)) & 3;
                        int tile = groups[2 * b] + member;
                        assertTrue(r >= starts[tile] && r < starts[tile + 1], "row " + r + " is not in its warp's tile");
                    }
                }
            }
            for (int r = 0; r < seen.length; r++) {
                assertTrue(seen[r], grid + " token " + r + " in no block");
            }
        }
    }

    @Test
    void wanFineForwardRunsOneBlockPerGroupOfPartialTiles() {
        int[] starts = new TileGrid(new Shape3(21, 30, 52), new Shape3(4, 4, 4)).tileStarts();
        int[] groups = PackedTiles.groups(starts);
        int[] sizes = new int[5];
        for (int g = 0; g < groups.length / 2; g++) {
            sizes[groups[2 * g + 1]]++;
        }
        // 65 tiles of 32 tokens (H's last two rows) and 91 of 16 (T's last frame) in runs of 13: 30 pairs, one pair
        // of 16-token tiles joining the run's last 32-token tile, then 22 groups of four
        assertArrayEquals(new int[]{0, 0, 30, 1, 22}, sizes);
        int blocks = PackedTiles.blockTable(starts, groups, VsaPlan.queryBlockTable(starts, 64)).length / 4;
        assertEquals(624 - 60 - 3 - 88 + 53, blocks);
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
