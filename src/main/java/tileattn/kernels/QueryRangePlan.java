package tileattn.kernels;

import java.util.Arrays;
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
public final class QueryRangePlan {

    /** Keys per block: BKV of the dK/dV kernel. */
    public static final int BLOCK_ROWS = 128;

    private final int heads;
    private final int sequenceLength;
    private final int slots;
    private final int[] keyBlocks;     // {rowStart, rowCount, slot, 0} per block
    private final int[] listOf;        // [heads * slots]
    private final int[] rangeOffsets;  // [lists + 1]
    private final int[] ranges;        // {start, end} per range

    private QueryRangePlan(int heads, int sequenceLength, int slots, int[] keyBlocks, int[] listOf, int[] rangeOffsets,
                           int[] ranges) {
        this.heads = heads;
        this.sequenceLength = sequenceLength;
        this.slots = slots;
        this.keyBlocks = keyBlocks;
        this.listOf = listOf;
        this.rangeOffsets = rangeOffsets;
        this.ranges = ranges;
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
        if (sequenceLength < 1) {
            throw new IllegalArgumentException("sequence length must be positive, got " + sequenceLength);
        }
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
        }
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

    public int heads() {
        return heads;
    }

    public int sequenceLength() {
        return sequenceLength;
    }

    public int slots() {
        return slots;
    }

    public int blockCount() {
        return keyBlocks.length / 4;
    }

    public int blockRowStart(int block) {
        return keyBlocks[4 * block];
    }

    public int blockRowCount(int block) {
        return keyBlocks[4 * block + 1];
    }

    public int blockSlot(int block) {
        return keyBlocks[4 * block + 2];
    }

    /** The query list a head's KV block reads. */
    public int listOf(int head, int block) {
        return listOf[head * slots + blockSlot(block)];
    }

    public int listCount() {
        return rangeOffsets.length - 1;
    }

    public int rangeCount(int list) {
        return rangeOffsets[list + 1] - rangeOffsets[list];
    }

    public int rangeStart(int list, int i) {
        return ranges[2 * (rangeOffsets[list] + i)];
    }

    public int rangeEnd(int list, int i) {
        return ranges[2 * (rangeOffsets[list] + i) + 1];
    }

    // The tables as the kernel reads them.
    int[] keyBlockTable() {
        return keyBlocks.clone();
    }

    int[] listOfTable() {
        return listOf.clone();
    }

    int[] rangeOffsetTable() {
        return rangeOffsets.clone();
    }

    int[] rangeTable() {
        return ranges.clone();
    }

    @Override
    public String toString() {
        return "QueryRangePlan[" + heads + " heads, S=" + sequenceLength + ", " + blockCount() + " KV blocks, "
                + listCount() + " lists, " + ranges.length / 2 + " ranges]";
    }

    /** Lists of token ranges in CSR form, built one list at a time; adjacent ranges of a list merge. */
    private static final class RangeLists {
        private int[] ranges = new int[64];
        private int size;  // ints used in ranges
        private int[] offsets = new int[]{0, 0, 0, 0, 0, 0, 0, 0};
        private int lists;
        private int listStart;

        int count() {
            return lists;
        }

        void append(int start, int end) {
            if (size > listStart && ranges[size - 1] == start) {
                ranges[size - 1] = end;
                return;
            }
            if (size + 2 > ranges.length) {
                ranges = Arrays.copyOf(ranges, Math.multiplyExact(ranges.length, 2));
            }
            ranges[size++] = start;
            ranges[size++] = end;
        }

        void close() {
            if (lists + 2 > offsets.length) {
                offsets = Arrays.copyOf(offsets, Math.multiplyExact(offsets.length, 2));
            }
            offsets[++lists] = size / 2;
            listStart = size;
        }

        int[] offsets() {
            return Arrays.copyOf(offsets, lists + 1);
        }

        int[] ranges() {
            return Arrays.copyOf(ranges, size);
        }
    }

    /** {rowStart, rowCount, slot, 0} entries of at most BLOCK_ROWS rows. */
    private static final class BlockTable {
        private int[] data = new int[64];
        private int size;

        void add(int from, int to, int slot) {
            for (int r = from; r < to; r += BLOCK_ROWS) {
                if (size + 4 > data.length) {
                    data = Arrays.copyOf(data, Math.multiplyExact(data.length, 2));
                }
                data[size++] = r;
                data[size++] = Math.min(BLOCK_ROWS, to - r);
                data[size++] = slot;
                data[size++] = 0;
            }
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }
}
