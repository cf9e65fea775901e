package tileattn.kernels;

import java.util.HashMap;
import java.util.Map;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * The forward's work tables (tile_attention.cu, tile_attention_sm90.cu, tile_attention_sm90_ws.cu): query blocks
 * that never cross a query tile, and per (head, slot) a list of KV token ranges. A slot is a query tile, or the text
 * queries. Adjacent KV tiles are merged into one range (a 3×3×3 window of 6×8×8 tiles is 9 ranges of 1152 keys),
 * video queries also read the text range, and text queries read [0, S). Heads with equal windows share their lists.
 * Text blocks come first: they are the longest, and starting them early balances the grid.
 */
public final class KvRangePlan extends BlockRangePlan {

    private final double attendedPairs;

    private KvRangePlan(int heads, int sequenceLength, int slots, int[] queryBlocks, int[] listOf, int[] rangeOffsets,
                        int[] ranges) {
        super(heads, sequenceLength, slots, queryBlocks, listOf, rangeOffsets, ranges);
        double pairs = 0;
        for (int h = 0; h < heads; h++) {
            for (int b = 0; b < blockCount(); b++) {
                pairs += (double) blockRowCount(b) * tokensOf(listOf(h, b));
            }
        }
        this.attendedPairs = pairs;
    }

    /** Sliding Tile Attention over a tile-ordered sequence, one window per head. */
    public static KvRangePlan sta(TokenLayout layout, Window[] windowsPerHead) {
        if (windowsPerHead == null || windowsPerHead.length == 0) {
            throw new IllegalArgumentException("STA needs one window per head, got none");
        }
        TileGrid grid = layout.grid();
        int tiles = grid.tileCount();
        int video = grid.videoTokens();
        int text = layout.textLength();
        int seq = layout.sequenceLength();
        int[] starts = grid.tileStarts();
        int slots = tiles + (text > 0 ? 1 : 0);

        RangeLists lists = new RangeLists();
        Map<Window, Integer> firstList = new HashMap<>();
        int[] listOf = new int[windowsPerHead.length * slots];
        for (int h = 0; h < windowsPerHead.length; h++) {
            Window window = windowsPerHead[h];
            if (window == null) {
                throw new IllegalArgumentException("the STA window of head " + h + " is missing");
            }
            Integer base = firstList.get(window);
            if (base == null) {
                base = lists.count();
                firstList.put(window, base);
                TileLists kvTiles = StaMask.tileLists(grid, window);
                for (int q = 0; q < tiles; q++) {
                    for (int i = 0; i < kvTiles.count(q); i++) {
                        int kv = kvTiles.get(q, i);
                        lists.append(starts[kv], starts[kv + 1]);
                    }
                    if (text > 0) {
                        lists.append(video, seq);
                    }
                    lists.close();
                }
                if (text > 0) {
                    lists.append(0, seq);
                    lists.close();
                }
            }
            for (int s = 0; s < slots; s++) {
                listOf[h * slots + s] = base + s;
            }
        }

        BlockTable blocks = new BlockTable();
        if (text > 0) {
            blocks.add(video, seq, tiles);
        }
        for (int q = 0; q < tiles; q++) {
            blocks.add(starts[q], starts[q + 1], q);
        }
        return new KvRangePlan(windowsPerHead.length, seq, slots, blocks.toArray(), listOf, lists.offsets(),
                lists.ranges());
    }

    /** Dense attention over any sequence: every query reads [0, S). */
    public static KvRangePlan dense(int sequenceLength, int heads) {
        checkDense(sequenceLength, heads);
        BlockTable blocks = new BlockTable();
        blocks.add(0, sequenceLength, 0);
        return new KvRangePlan(heads, sequenceLength, 1, blocks.toArray(), new int[heads], new int[]{0, 1},
                new int[]{0, sequenceLength});
    }

    /** Σ over heads and query rows of the keys attended, for one batch element: FLOPs = 4 · this · d · B. */
    public double attendedPairs() {
        return attendedPairs;
    }

    @Override
    String blockNoun() {
        return "query";
    }
}
