package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

/**
 * The transposed lists against the literal STA rule token by token, and against the forward's {@link KvRangePlan}
 * (a query reads a key in one exactly when the key's block lists the query in the other).
 */
class QueryRangePlanTest {

    /** The literal STA rule per (query tile, key tile). */
    private static boolean[][] tileRule(TileGrid grid, Window window) {
        int tiles = grid.tileCount();
        boolean[][] rule = new boolean[tiles][tiles];
        for (int q = 0; q < tiles; q++) {
            for (int k = 0; k < tiles; k++) {
                rule[q][k] = StaMask.allows(grid, window, q, k);
            }
        }
        return rule;
    }

    private static int[] tileOf(TileGrid grid) {
        int[] starts = grid.tileStarts();
        int[] tileOf = new int[grid.videoTokens()];
        for (int t = 0; t < grid.tileCount(); t++) {
            for (int i = starts[t]; i < starts[t + 1]; i++) {
                tileOf[i] = t;
            }
        }
        return tileOf;
    }

    /** Per head, a [key][query] table of which queries the key's block lists. */
    private static boolean[][] listed(QueryRangePlan plan, int head) {
        int seq = plan.sequenceLength();
        boolean[][] reads = new boolean[seq][seq];
        for (int b = 0; b < plan.blockCount(); b++) {
            int list = plan.listOf(head, b);
            for (int r = 0; r < plan.rangeCount(list); r++) {
                for (int i = plan.rangeStart(list, r); i < plan.rangeEnd(list, r); i++) {
                    for (int j = plan.blockRowStart(b); j < plan.blockRowStart(b) + plan.blockRowCount(b); j++) {
                        reads[j][i] = true;
                    }
                }
            }
        }
        return reads;
    }

    private static void checkStructure(QueryRangePlan plan, TokenLayout layout) {
        int seq = plan.sequenceLength();
        boolean[] covered = new boolean[seq];
        int[] starts = layout.grid().tileStarts();
        for (int b = 0; b < plan.blockCount(); b++) {
            int from = plan.blockRowStart(b), count = plan.blockRowCount(b), slot = plan.blockSlot(b);
            assertTrue(count >= 1 && count <= plan.blockRows(), "block " + b + " has " + count + " keys");
            int slotFrom = slot < layout.grid().tileCount() ? starts[slot] : layout.videoTokens();
            int slotTo = slot < layout.grid().tileCount() ? starts[slot + 1] : seq;
            assertTrue(from >= slotFrom && from + count <= slotTo, "block " + b + " crosses its slot " + slot);
            for (int j = from; j < from + count; j++) {
                assertFalse(covered[j], "key " + j + " is in two blocks");
                covered[j] = true;
            }
        }
        for (int j = 0; j < seq; j++) {
            assertTrue(covered[j], "key " + j + " is in no block");
        }
        for (int list = 0; list < plan.listCount(); list++) {
            assertTrue(plan.rangeCount(list) >= 1, "list " + list + " is empty");
            for (int r = 0; r < plan.rangeCount(list); r++) {
                assertTrue(plan.rangeStart(list, r) < plan.rangeEnd(list, r));
                if (r > 0) {
                    assertTrue(plan.rangeEnd(list, r - 1) < plan.rangeStart(list, r),
                            "list " + list + ": ranges " + (r - 1) + " and " + r + " should be merged or ordered");
                }
            }
        }
        if (layout.textLength() > 0) {
            assertEquals(layout.grid().tileCount(), plan.blockSlot(0), "text blocks come first");
        }
    }

    @Test
    void listsExactlyTheQueriesTheStaRuleAllows() {
        Random rnd = new Random(41);
        Object[][] cases = {
                {new Shape3(9, 10, 11), new Shape3(4, 4, 4), 1, new Window[]{new Window(3, 3, 3), new Window(1, 3, 1)}},
                {new Shape3(7, 9, 23), new Shape3(4, 4, 4), 256, new Window[]{new Window(1, 3, 3), new Window(2, 3, 5), new Window(1, 3, 3)}},
                {new Shape3(1, 40, 56), new Shape3(1, 8, 8), 7, new Window[]{new Window(1, 3, 5), new Window(1, 1, 7)}},
                {new Shape3(8, 12, 20), new Shape3(4, 4, 4), 0, new Window[]{new Window(2, 3, 3), new Window(1, 1, 5)}},
                {new Shape3(5, 5, 5), new Shape3(2, 4, 3), 1, new Window[]{new Window(1, 1, 1)}},
        };
        for (Object[] c : cases) {
            TokenLayout layout = TokenLayout.of((Shape3) c[0], (Shape3) c[1], (int) c[2]);
            Window[] windows = (Window[]) c[3];
            QueryRangePlan plan = QueryRangePlan.sta(layout, windows).withBlockRows(c[1].equals(new Shape3(4, 4, 4)) ? 64 : 128);
            KvRangePlan forward = KvRangePlan.sta(layout, windows);
            checkStructure(plan, layout);
            int[] tileOf = tileOf(layout.grid());
            int seq = layout.sequenceLength();
            int video = layout.videoTokens();
            for (int h = 0; h < windows.length; h++) {
                boolean[][] reads = listed(plan, h);
                boolean[][] rule = tileRule(layout.grid(), windows[h]);
                for (int j = 0; j < seq; j++) {
                    for (int i = 0; i < seq; i++) {
                        // text on either side always reads
                        boolean allowed = i >= video || j >= video || rule[tileOf[i]][tileOf[j]];
                        if (allowed != reads[j][i]) {
                            fail(layout + " head " + h + ": query " + i + ", key " + j + " allowed " + allowed);
                        }
                    }
                }
                // the forward plan, read the other way round
                for (int b = 0; b < forward.blockCount(); b++) {
                    int list = forward.listOf(h, b);
                    int i = forward.blockRowStart(b) + rnd.nextInt(forward.blockRowCount(b));
                    for (int r = 0; r < forward.rangeCount(list); r++) {
                        int j = forward.rangeStart(list, r) + rnd.nextInt(forward.rangeEnd(list, r) - forward.rangeStart(list, r));
                        assertTrue(reads[j][i], "the forward lets query " + i + " read key " + j + " but the transpose does not");
                    }
                }
            }
            assertEquals(windows.length, plan.heads());
            assertEquals(seq, plan.sequenceLength());
        }
    }

    @Test
    void headsWithOneWindowShareLists() {
        TokenLayout layout = TokenLayout.of(new Shape3(12, 16, 16), new Shape3(6, 8, 8), 3);
        Window a = new Window(1, 1, 1), b = new Window(2, 2, 2);
        QueryRangePlan plan = QueryRangePlan.sta(layout, new Window[]{a, b, a});
        assertEquals(2 * plan.slots(), plan.listCount());
        for (int blk = 0; blk < plan.blockCount(); blk++) {
            assertEquals(plan.listOf(0, blk), plan.listOf(2, blk));
            assertNotEquals(plan.listOf(0, blk), plan.listOf(1, blk));
        }
    }

    @Test
    void denseReadsEveryQuery() {
        QueryRangePlan plan = QueryRangePlan.dense(300, 3);
        assertEquals(3, plan.blockCount());
        assertEquals(44, plan.blockRowCount(2));
        for (int h = 0; h < 3; h++) {
            int list = plan.listOf(h, 1);
            assertEquals(1, plan.rangeCount(list));
            assertEquals(0, plan.rangeStart(list, 0));
            assertEquals(300, plan.rangeEnd(list, 0));
        }
    }

    @Test
    void rejectsMissingWindowsAndEmptySequences() {
        TokenLayout layout = TokenLayout.of(new Shape3(6, 8, 8), new Shape3(6, 8, 8), 0);
        assertThrows(IllegalArgumentException.class, () -> QueryRangePlan.sta(layout, new Window[0]));
        assertThrows(IllegalArgumentException.class, () -> QueryRangePlan.sta(layout, new Window[]{null}));
        assertThrows(IllegalArgumentException.class, () -> QueryRangePlan.dense(0, 1));
        assertThrows(IllegalArgumentException.class, () -> QueryRangePlan.dense(5, 0));
    }
}
