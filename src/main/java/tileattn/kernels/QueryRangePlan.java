package tileattn.kernels;

import java.util.HashMap;
import java.util.Map;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * The transpose of a {@link KvRangePlan}, for the backward's dK/dV kernel: KV blocks of at most
 * {@link #BLOCK_ROWS} keys that never cross a KV tile (or into the text), and per (head, slot) the list of QUERY
 * token ranges that attend the slot. A slot is a KV tile, or the text keys. For STA, KV tile k is read by the
 * query tiles whose window holds k (adjacent ones merged into one range) and by every text query; text keys are
 * read by every query, [0, S). Heads with equal windows share their lists. Text blocks come first: each of them
 * walks the whole sequence, and starting them early balances the grid.
 */
public final class QueryRangePlan extends BlockRangePlan {

    private QueryRangePlan(int heads, int sequenceLength, int slots, int[] keyBlocks, int[] listOf, int[] rangeOffsets,
                           int[] ranges) {
        super(heads, sequenceLength, slots, keyBlocks, listOf, rangeOffsets, ranges);
    }

    /** Sliding Tile Attention over a tile-ordered sequence, one window per head (the keys' side). */
    public static QueryRangePlan sta(TokenLayout layout, Window[] windowsPerHead) {
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
                int[][] readers = readersOf(StaMask.tileLists(grid, window), tiles);
                for (int kv = 0; kv < tiles; kv++) {
                    for (int q : readers[kv]) {
                        lists.append(starts[q], starts[q + 1]);
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
        for (int kv = 0; kv < tiles; kv++) {
            blocks.add(starts[kv], starts[kv + 1], kv);
        }
        return new QueryRangePlan(windowsPerHead.length, seq, slots, blocks.toArray(), listOf, lists.offsets(),
                lists.ranges());
    }

    /** Dense attention over any sequence: every key is read by every query, [0, S). */
    public static QueryRangePlan dense(int sequenceLength, int heads) {
        checkDense(sequenceLength, heads);
        BlockTable blocks = new BlockTable();
        blocks.add(0, sequenceLength, 0);
        return new QueryRangePlan(heads, sequenceLength, 1, blocks.toArray(), new int[heads], new int[]{0, 1},
                new int[]{0, sequenceLength});
    }

    /** For each KV tile, the ascending query tiles whose lists hold it. */
    private static int[][] readersOf(TileLists lists, int tiles) {
        int[] counts = new int[tiles];
        for (int kv : lists.kvTiles()) {
            counts[kv]++;
        }
        int[][] readers = new int[tiles][];
        for (int kv = 0; kv < tiles; kv++) {
            readers[kv] = new int[counts[kv]];
        }
        int[] filled = new int[tiles];
        for (int q = 0; q < tiles; q++) {
            for (int i = 0; i < lists.count(q); i++) {
                int kv = lists.get(q, i);
                readers[kv][filled[kv]++] = q;
            }
        }
        return readers;
    }

    @Override
    String blockNoun() {
        return "KV";
    }
}
