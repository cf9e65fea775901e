package tileattn.kernels;

import java.util.Arrays;

/**
 * The work tables the block-sparse kernels read, built on the host: blocks of at most {@code BLOCK_ROWS} rows that
 * never cross a tile (or into the text), each naming its slot, and per (head, slot) a list of token ranges the block
 * reads. {@link KvRangePlan} is the forward's (query blocks reading KV ranges), {@link QueryRangePlan} its
 * transpose for the backward's dK/dV kernel (KV blocks read by query ranges).
 */
public abstract sealed class BlockRangePlan permits KvRangePlan, QueryRangePlan {

    /** Rows per block: BM of the forward and dQ kernels, BKV of the dK/dV kernel. */
    public static final int BLOCK_ROWS = 128;

    private final int heads;
    private final int sequenceLength;
    private final int slots;
    private final int[] blocks;        // {rowStart, rowCount, slot, 0} per block
    private final int[] listOf;        // [heads * slots]
    private final int[] rangeOffsets;  // [lists + 1]
    private final int[] ranges;        // {start, end} per range

    BlockRangePlan(int heads, int sequenceLength, int slots, int[] blocks, int[] listOf, int[] rangeOffsets,
                   int[] ranges) {
        this.heads = heads;
        this.sequenceLength = sequenceLength;
        this.slots = slots;
        this.blocks = blocks;
        this.listOf = listOf;
        this.rangeOffsets = rangeOffsets;
        this.ranges = ranges;
    }

    static void checkDense(int sequenceLength, int heads) {
        if (sequenceLength < 1) {
            throw new IllegalArgumentException("sequence length must be positive, got " + sequenceLength);
        }
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
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
                + blockNoun() + " blocks, " + listCount() + " lists, " + ranges.length / 2 + " ranges]";
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

    /** {rowStart, rowCount, slot, 0} entries of at most BLOCK_ROWS rows. */
    static final class BlockTable {
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
