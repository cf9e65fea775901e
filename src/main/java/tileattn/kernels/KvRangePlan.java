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
 * The work tables of the block-sparse attention kernels (tile_attention.cu, tile_attention_sm90.cu), built on the
 * host: query blocks of at most {@link #BLOCK_ROWS} rows that never cross a query tile, and per (head, slot) a
 * list of KV token ranges. A slot is a query tile, or the text queries. Adjacent KV tiles are merged into one
 * range (a 3×3×3 window of 6×8×8 tiles is 9 ranges of 1152 keys), video queries also read the text range, and text
 * queries read [0, S). Heads with equal windows share their lists. Text blocks come first: they are the longest,
 * and starting them early balances the grid.
 */
public final class KvRangePlan {

    /** Query rows per block: BM of both kernels. */
    public static final int BLOCK_ROWS = 128;

    private final int heads;
    private final int sequenceLength;
    private final int slots;
    private final int[] queryBlocks;   // {rowStart, rowCount, slot, 0} per block
    private final int[] listOf;        // [heads * slots]
    private final int[] rangeOffsets;  // [lists + 1]
    private final int[] ranges;        // {start, end} per range
    private final double attendedPairs;

    private KvRangePlan(int heads, int sequenceLength, int slots, int[] queryBlocks, int[] listOf, int[] rangeOffsets,
                        int[] ranges) {
        this.heads = heads;
        this.sequenceLength = sequenceLength;
        this.slots = slots;
        this.queryBlocks = queryBlocks;
        this.listOf = listOf;
        this.rangeOffsets = rangeOffsets;
        this.ranges = ranges;
        double pairs = 0;
        for (int h = 0; h < heads; h++) {
            for (int b = 0; b < blockCount(); b++) {
                pairs += (double) blockRowCount(b) * keysOf(listOf[h * slots + blockSlot(b)]);
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

        Ints ranges = new Ints();
        Ints offsets = new Ints();
        offsets.add(0);
        Map<Window, Integer> firstList = new HashMap<>();
        int[] listOf = new int[windowsPerHead.length * slots];
        for (int h = 0; h < windowsPerHead.length; h++) {
            Window window = windowsPerHead[h];
            if (window == null) {
                throw new IllegalArgumentException("the STA window of head " + h + " is missing");
            }
            Integer base = firstList.get(window);
            if (base == null) {
                base = offsets.size() - 1;
                firstList.put(window, base);
                TileLists lists = StaMask.tileLists(grid, window);
                for (int q = 0; q < tiles; q++) {
                    int before = ranges.size();
                    for (int i = 0; i < lists.count(q); i++) {
                        int kv = lists.get(q, i);
                        appendMerged(ranges, before, starts[kv], starts[kv + 1]);
                    }
                    if (text > 0) {
                        appendMerged(ranges, before, video, seq);
                    }
                    offsets.add(ranges.size() / 2);
                }
                if (text > 0) {
                    ranges.add(0);
                    ranges.add(seq);
                    offsets.add(ranges.size() / 2);
                }
            }
            for (int s = 0; s < slots; s++) {
                listOf[h * slots + s] = base + s;
            }
        }

        Ints blocks = new Ints();
        if (text > 0) {
            addBlocks(blocks, video, seq, tiles);
        }
        for (int q = 0; q < tiles; q++) {
            addBlocks(blocks, starts[q], starts[q + 1], q);
        }
        return new KvRangePlan(windowsPerHead.length, seq, slots, blocks.toArray(), listOf, offsets.toArray(),
                ranges.toArray());
    }

    /** Dense attention over any sequence: every query reads [0, S). */
    public static KvRangePlan dense(int sequenceLength, int heads) {
        if (sequenceLength < 1) {
            throw new IllegalArgumentException("sequence length must be positive, got " + sequenceLength);
        }
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
        }
        Ints blocks = new Ints();
        addBlocks(blocks, 0, sequenceLength, 0);
        return new KvRangePlan(heads, sequenceLength, 1, blocks.toArray(), new int[heads], new int[]{0, 1},
                new int[]{0, sequenceLength});
    }

    /** Appends [start, end) to the list that began at {@code listStart}, extending its last range when adjacent. */
    private static void appendMerged(Ints ranges, int listStart, int start, int end) {
        if (ranges.size() > listStart && ranges.get(ranges.size() - 1) == start) {
            ranges.set(ranges.size() - 1, end);
        } else {
            ranges.add(start);
            ranges.add(end);
        }
    }

    private static void addBlocks(Ints blocks, int from, int to, int slot) {
        for (int r = from; r < to; r += BLOCK_ROWS) {
            blocks.add(r);
            blocks.add(Math.min(BLOCK_ROWS, to - r));
            blocks.add(slot);
            blocks.add(0);
        }
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
        return queryBlocks.length / 4;
    }

    public int blockRowStart(int block) {
        return queryBlocks[4 * block];
    }

    public int blockRowCount(int block) {
        return queryBlocks[4 * block + 1];
    }

    public int blockSlot(int block) {
        return queryBlocks[4 * block + 2];
    }

    /** The KV list a head's block reads. */
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

    /** Number of keys a list covers. */
    public long keysOf(int list) {
        long keys = 0;
        for (int i = 0; i < rangeCount(list); i++) {
            keys += rangeEnd(list, i) - rangeStart(list, i);
        }
        return keys;
    }

    /** Σ over heads and query rows of the keys attended, for one batch element: FLOPs = 4 · this · d · B. */
    public double attendedPairs() {
        return attendedPairs;
    }

    // The tables as the kernels read them.
    int[] queryBlockTable() {
        return queryBlocks.clone();
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
        return "KvRangePlan[" + heads + " heads, S=" + sequenceLength + ", " + blockCount() + " query blocks, "
                + listCount() + " lists, " + ranges.length / 2 + " ranges]";
    }

    /** A growable int array. */
    private static final class Ints {
        private int[] data = new int[64];
        private int size;

        void add(int x) {
            if (size == data.length) {
                data = Arrays.copyOf(data, Math.multiplyExact(data.length, 2));
            }
            data[size++] = x;
        }

        int get(int i) {
            return data[i];
        }

        void set(int i, int x) {
            data[i] = x;
        }

        int size() {
            return size;
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }
}
