package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/** The choice between 64- and 128-row blocks, and plans split anew into either. */
class BlockRowsTest {

    @Test
    void sixtyFourRowsOnlyWhereTheyComputeFewerRows() {
        assertEquals(64, BlockRows.fewestComputed(new int[]{64, 64, 64}));           // 4x4x4 tiles: half the rows
        assertEquals(64, BlockRows.fewestComputed(new int[]{64, 48, 12, 1}));         // partial edge tiles
        assertEquals(128, BlockRows.fewestComputed(new int[]{384, 384}));             // 6x8x8: no gain
        assertEquals(128, BlockRows.fewestComputed(new int[]{96, 128, 100}));          // 128 each either way
        assertEquals(128, BlockRows.fewestComputed(new int[]{1000}));                  // dense: 1024 either way
        assertEquals(128, BlockRows.fewestComputed(new int[]{1030}));                  // 1088 against 1152: too little
        assertEquals(64, BlockRows.fewestComputed(new int[]{1030, 60}));               // 1152 against 1280
        assertEquals(3L * 128, BlockRows.computedRows(new int[]{64, 64, 1}, 128));
        assertEquals(3L * 64, BlockRows.computedRows(new int[]{64, 64, 1}, 64));
        assertThrows(IllegalArgumentException.class, () -> BlockRows.check(32));
    }

    @Test
    void segmentsAreTheTilesAndTheText() {
        TokenLayout layout = TokenLayout.of(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 200);
        KvRangePlan plan = KvRangePlan.sta(layout, new Window[]{new Window(1, 3, 3)});
        int[] lengths = plan.segmentLengths();
        int tiles = layout.grid().tileCount();
        assertEquals(tiles + 1, lengths.length);
        assertEquals(200, lengths[0], "text first");
        for (int t = 0; t < tiles; t++) {
            assertEquals(layout.grid().tileTokens(t), lengths[t + 1], "tile " + t);
        }
        assertEquals(64, BlockRows.fewestComputed(lengths));
        QueryRangePlan keys = QueryRangePlan.sta(layout, new Window[]{new Window(1, 3, 3)}).withBlockRows(64);
        assertArrayEquals(lengths, keys.segmentLengths(), "splitting keeps the segments");
        assertEquals(KvRangePlan.dense(1030, 2).withBlockRows(64).blockCount(), 17);
        assertSame(plan, plan.withBlockRows(128));
        assertThrows(IllegalArgumentException.class, () -> plan.withBlockRows(100));
    }
}
