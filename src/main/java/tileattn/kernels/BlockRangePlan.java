package tileattn.kernels;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * The work tables the block-sparse kernels read, built on the host: blocks of at most {@link #blockRows} rows (128,
 * or 64 for the kernels' 64-row variants) that never cross a tile (or into the text), each naming its slot, and per
 * (head, slot) a list of token ranges the block reads. {@link KvRangePlan} is the forward's (query blocks reading KV ranges), {@link QueryRangePlan} its
 * transpose for the backward's dK/dV kernel (KV blocks read by query ranges).
 */
public abstract sealed class BlockRangePlan permits KvRangePlan, QueryRangePlan {

    /** Rows per block of the plans built by {@code sta} and {@code dense}: BM of the forward and dQ kernels, BKV of the dK/dV kernel. */
    public static final int BLOCK_ROWS = BlockRows.LARGE;

    private final int heads;
    private final int sequenceLength;
    private final int slots;
    private final int blockRows;
    private final int[] blocks;        // {rowStart, rowCount, slot, 0} per block
    private final int[] listOf;        // [heads * slots]
    private final int[] rangeOffsets;  // [lists + 1]
    private final int[] ranges;        // {start, end} per range

    BlockRangePlan(Tables tables) {
        this.heads = tables.heads();
        this.sequenceLength = tables.sequenceLength();
        this.slots = tables.slots();
        this.blockRows = tables.blockRows();
        this.blocks = tables.blocks();
        this.listOf = tables.listOf();
        this.rangeOffsets = tables.rangeOffsets();
        this.ranges = tables.ranges();
    }

    /** The raw tables a plan is made of. */
    record Tables(int heads, int sequenceLength, int slots, int blockRows, int[] blocks, int[] listOf,
                  int[] rangeOffsets, int[] ranges) {
    }

    /**
     * Whether every head's window covers the whole tile grid: such STA is dense attention, and the dense tables'
     * blocks may cross tiles, so partial tiles cost no empty rows (13% at Wan-2.1 480p with 6×8×8 tiles).
     */
    static boolean allWindowsFull(TokenLayout layout, Window[] windowsPerHead) {
        if (windowsPerHead == null || windowsPerHead.length == 0) {
            return false;
        }
        Window full = Window.full(layout.grid().tiles());
        return Arrays.stream(windowsPerHead).allMatch(full::equals);
    }

    /**
     * STA tables: one block run per video tile (after the text's blocks, which are the longest and so start first)
     * and, per head, one list per tile holding the token ranges of the tiles {@code tileLists} gives it (adjacent
     * ones merged), plus the text, and a last list [0, S) for the text rows. Heads with equal windows share lists.
     */
    static Tables staTables(TokenLayout layout, Window[] windowsPerHead, Function<Window, TileLists> tileLists) {
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
                TileLists read = tileLists.apply(window);
                for (int t = 0; t < tiles; t++) {
                    for (int i = 0; i < read.count(t); i++) {
                        int u = read.get(t, i);
                        lists.append(starts[u], starts[u + 1]);
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

        BlockTable blocks = new BlockTable(BLOCK_ROWS);
        if (text > 0) {
            blocks.add(video, seq, tiles);
        }
        for (int t = 0; t < tiles; t++) {
            blocks.add(starts[t], starts[t + 1], t);
        }
        return new Tables(windowsPerHead.length, seq, slots, BLOCK_ROWS, blocks.toArray(), listOf, lists.offsets(),
                lists.ranges());
    }

    /** Dense tables over any sequence: one list, [0, S), read by every block of every head. */
    static Tables denseTables(int sequenceLength, int heads) {
        if (sequenceLength < 1) {
            throw new IllegalArgumentException("sequence length must be positive, got " + sequenceLength);
        }
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
        }
        BlockTable blocks = new BlockTable(BLOCK_ROWS);
        blocks.add(0, sequenceLength, 0);
        return new Tables(heads, sequenceLength, 1, BLOCK_ROWS, blocks.toArray(), new int[heads], new int[]{0, 1},
                new int[]{0, sequenceLength});
    }

    /**
     * These tables with blocks of {@code rows} (64 or 128): every segment (a run of blocks of one slot over
     * consecutive rows: a tile, the text, or the whole sequence) split anew, in the same order; lists unchanged.
     */
    Tables reblocked(int rows) {
        BlockRows.check(rows);
        BlockTable table = new BlockTable(rows);
        int[] segments = segments();
        for (int i = 0; i < segments.length; i += 3) {
            table.add(segments[i], segments[i + 1], segments[i + 2]);
        }
        return new Tables(heads, sequenceLength, slots, rows, table.toArray(), listOf, rangeOffsets, ranges);
    }

    /** Token counts of the segments the blocks cover (see {@link #reblocked}), for {@link BlockRows}. */
    int[] segmentLengths() {
        int[] segments = segments();
        int[] lengths = new int[segments.length / 3];
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = segments[3 * i + 1] - segments[3 * i];
        }
        return lengths;
    }

    /** {from, to, slot} per segment: blocks of one slot over consecutive rows joined, in block order. */
    private int[] segments() {
        int[] out = new int[3 * blockCount()];
        int n = 0;
        for (int b = 0; b < blockCount(); b++) {
            int from = blockRowStart(b), to = from + blockRowCount(b), slot = blockSlot(b);
            if (n > 0 && out[n - 1] == slot && out[n - 2] == from) {
                out[n - 2] = to;
            } else {
                out[n++] = from;
                out[n++] = to;
                out[n++] = slot;
            }
        }
        return Arrays.copyOf(out, n);
    }

    /** Every query of [0, S) reads the keys [0, keys): attention to a prefix, e.g. text keys stored in front of padding. */
    static Tables prefixTables(int sequenceLength, int heads, int keys) {
        if (keys < 1 || keys > sequenceLength) {
            throw new IllegalArgumentException("prefix of " + keys + " keys must be within the sequence of "
                    + sequenceLength + " (the keys live in tensors of the queries' shape)");
        }
        Tables dense = denseTables(sequenceLength, heads);
        return new Tables(heads, sequenceLength, 1, dense.blockRows(), dense.blocks(), dense.listOf(),
                dense.rangeOffsets(), new int[]{0, keys});
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

    /** Rows per block at most: 128, or 64. */
    public int blockRows() {
        return blockRows;
    }

    public int blockCount() {
        return blocks.length / 4;
    }

    public int blockRowStart(int block) {
        return blocks[4 * block];
    }

    public int blockRowCount(int block) {
        return blocks[4 * block + 1];
    }

    public int blockSlot(int block) {
        return blocks[4 * block + 2];
    }

    /** The list a head's block reads. */
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

    /** Number of tokens a list covers. */
    public long tokensOf(int list) {
        long tokens = 0;
        for (int i = 0; i < rangeCount(list); i++) {
            tokens += rangeEnd(list, i) - rangeStart(list, i);
        }
        return tokens;
    }

    // The tables as the kernels read them.
    int[] blockTable() {
        return blocks.clone();
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

    abstract String blockNoun();

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + heads + " heads, S=" + sequenceLength + ", " + blockCount() + " "
                + blockNoun() + " blocks of <= " + blockRows + " rows, " + listCount() + " lists, " + ranges.length / 2 + " ranges]";
    }

    /** Lists of token ranges in CSR form, built one list at a time; adjacent ranges of a list merge. */
    static final class RangeLists {
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

    /** {rowStart, rowCount, slot, 0} entries of at most {@code rows} rows. */
    static final class BlockTable {
        private final int rows;
        private int[] data = new int[64];
        private int size;

        BlockTable(int rows) {
            this.rows = rows;
        }

        void add(int from, int to, int slot) {
            for (int r = from; r < to; r += rows) {
                if (size + 4 > data.length) {
                    data = Arrays.copyOf(data, Math.multiplyExact(data.length, 2));
                }
                data[size++] = r;
                data[size++] = Math.min(rows, to - r);
                data[size++] = slot;
                data[size++] = 0;
            }
        }

        int[] toArray() {
            return Arrays.copyOf(data, size);
        }
    }
}
