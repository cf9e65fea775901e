package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

/** The kernels' work tables against the literal STA rule, token by token. */
class KvRangePlanTest {

    @Test
    void hunyuanWindowIsNineRangesOfThreeMergedTiles() {
        TokenLayout layout = TokenLayout.of(new Shape3(30, 48, 80), new Shape3(6, 8, 8), 0);
        KvRangePlan plan = KvRangePlan.sta(layout, new Window[]{new Window(3, 3, 3)});
        int centre = layout.grid().tileIndex(2, 3, 5);
        int list = plan.listOf(0, 3 * centre);
        assertEquals(9, plan.rangeCount(list));
        for (int i = 0; i < 9; i++) {
            assertEquals(1152, plan.rangeEnd(list, i) - plan.rangeStart(list, i));
        }
        assertEquals(115200 / 128, plan.blockCount());
        assertEquals(115200.0 * 27 * 384, plan.attendedPairs(), 0.0);
    }

    @Test
    void rangesCoverExactlyTheAllowedKeysOnRandomShapes() {
        Random rnd = new Random(5);
        for (int trial = 0; trial < 60; trial++) {
            Shape3 video = new Shape3(1 + rnd.nextInt(9), 1 + rnd.nextInt(20), 1 + rnd.nextInt(26));
            Shape3 tile = new Shape3(1 + rnd.nextInt(4), 1 + rnd.nextInt(8), 1 + rnd.nextInt(8));
            int text = switch (trial % 3) {
                case 0 -> 0;
                case 1 -> 1;
                default -> 1 + rnd.nextInt(300);
            };
            TokenLayout layout = TokenLayout.of(video, tile, text);
            Shape3 n = layout.grid().tiles();
            int heads = 1 + rnd.nextInt(3);
            Window[] windows = new Window[heads];
            for (int h = 0; h < heads; h++) {
                windows[h] = new Window(randomExtent(rnd, n.t()), randomExtent(rnd, n.h()), randomExtent(rnd, n.w()));
            }
            KvRangePlan plan = KvRangePlan.sta(layout, windows);
            checkPlan(layout, windows, plan);
            KvRangePlan small = plan.withBlockRows(64);
            assertEquals(64, small.blockRows());
            checkPlan(layout, windows, small);
            assertArrayEquals(plan.blockTable(), small.withBlockRows(128).blockTable(), "64 and back gives the same blocks");
            assertEquals(plan.attendedPairs(), small.attendedPairs(), 0.0);
        }
    }

    /** The whole extent, or an odd extent that fits. */
    private static int randomExtent(Random rnd, int n) {
        return rnd.nextInt(4) == 0 ? n : 1 + 2 * rnd.nextInt((n + 1) / 2);
    }

    private static void checkPlan(TokenLayout layout, Window[] windows, KvRangePlan plan) {
        TileGrid grid = layout.grid();
        int seq = layout.sequenceLength(), video = grid.videoTokens();
        int[] tileOf = new int[video];
        int[] starts = grid.tileStarts();
        for (int t = 0; t < grid.tileCount(); t++) {
            for (int i = starts[t]; i < starts[t + 1]; i++) {
                tileOf[i] = t;
            }
        }
        String what = layout.grid() + " text " + layout.textLength();
        boolean dense = Arrays.stream(windows).allMatch(Window.full(grid.tiles())::equals);
        int[] covered = new int[seq];
        boolean videoSeen = false;
        for (int b = 0; b < plan.blockCount(); b++) {
            int start = plan.blockRowStart(b), count = plan.blockRowCount(b);
            assertTrue(count >= 1 && count <= plan.blockRows(), what);
            boolean text = start >= video;
            if (text) {
                assertFalse(videoSeen && !dense, what + ": text blocks come first");
                assertTrue(start + count <= seq, what);
            } else {
                videoSeen = true;
                if (!dense) {
                    assertTrue(start + count <= video, what + ": block " + b + " runs into the text");
                    assertEquals(tileOf[start], tileOf[start + count - 1], what + ": block " + b + " crosses a tile");
                    assertEquals(tileOf[start], plan.blockSlot(b), what + ": block " + b + " names another tile");
                }
            }
            for (int r = start; r < start + count; r++) {
                covered[r]++;
            }
            for (int h = 0; h < windows.length; h++) {
                int list = plan.listOf(h, b);
                boolean[] keys = new boolean[seq];
                int last = -1;
                for (int i = 0; i < plan.rangeCount(list); i++) {
                    int s = plan.rangeStart(list, i), e = plan.rangeEnd(list, i);
                    assertTrue(s > last && e > s && e <= seq, what + ": ranges ascending, disjoint, not adjacent, non-empty");
                    for (int j = s; j < e; j++) {
                        keys[j] = true;
                    }
                    last = e;
                }
                for (int j = 0; j < seq; j++) {
                    boolean allowed = text || j >= video || StaMask.allows(grid, windows[h], tileOf[start], tileOf[j]);
                    if (keys[j] != allowed) {
                        fail(what + " window " + windows[h] + ": query block at " + start + ", key " + j + " covered="
                                + keys[j] + " but allowed=" + allowed);
                    }
                }
            }
        }
        for (int r = 0; r < seq; r++) {
            assertEquals(1, covered[r], what + ": row " + r + " in exactly one block");
        }
    }

    @Test
    void fullWindowsOnEveryHeadUseTheDenseTables() {
        TokenLayout layout = TokenLayout.of(new Shape3(21, 30, 52), new Shape3(6, 8, 8), 0);
        Window full = Window.full(layout.grid().tiles());
        KvRangePlan forward = KvRangePlan.sta(layout, new Window[]{full, full});
        QueryRangePlan backward = QueryRangePlan.sta(layout, new Window[]{full, full});
        assertEquals((32760 + 127) / 128, forward.blockCount(), "blocks cross the partial tiles");
        assertEquals(forward.blockCount(), backward.blockCount());
        assertEquals(2.0 * 32760 * 32760, forward.attendedPairs(), 0.0);
        KvRangePlan mixed = KvRangePlan.sta(layout, new Window[]{full, new Window(3, 3, 3)});
        assertTrue(mixed.blockCount() > forward.blockCount(), "one sparse head keeps the tile-aligned blocks");
    }

    @Test
    void headsWithEqualWindowsShareLists() {
        TokenLayout layout = TokenLayout.of(new Shape3(12, 16, 24), new Shape3(6, 8, 8), 5);
        Window a = new Window(1, 1, 3), b = new Window(2, 2, 1);
        KvRangePlan plan = KvRangePlan.sta(layout, new Window[]{a, b, a});
        assertEquals(2 * plan.slots(), plan.listCount());
        for (int blk = 0; blk < plan.blockCount(); blk++) {
            assertEquals(plan.listOf(0, blk), plan.listOf(2, blk));
            assertNotEquals(plan.listOf(0, blk), plan.listOf(1, blk));
        }
    }

    @Test
    void denseReadsEverythingInBlocksOf128() {
        KvRangePlan plan = KvRangePlan.dense(300, 3);
        assertEquals(3, plan.blockCount());
        assertEquals(44, plan.blockRowCount(2));
        assertEquals(1, plan.rangeCount(plan.listOf(2, 1)));
        assertEquals(300, plan.tokensOf(plan.listOf(1, 0)));
        assertEquals(3.0 * 300 * 300, plan.attendedPairs(), 0.0);
    }

    @Test
    void rejectsBadWindowsNamingTheProblem() {
        TokenLayout layout = TokenLayout.of(new Shape3(12, 16, 24), new Shape3(6, 8, 8), 0);
        IllegalArgumentException even = assertThrows(IllegalArgumentException.class,
                () -> KvRangePlan.sta(layout, new Window[]{new Window(1, 1, 2)}));
        assertTrue(even.getMessage().contains("even"), even.getMessage());
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> KvRangePlan.sta(layout, new Window[]{new Window(1, 1, 1), null}));
        assertTrue(missing.getMessage().contains("head 1"), missing.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KvRangePlan.sta(layout, new Window[0]));
        assertThrows(IllegalArgumentException.class, () -> KvRangePlan.dense(0, 1));
    }
}
