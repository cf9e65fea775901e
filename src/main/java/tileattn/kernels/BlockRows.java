package tileattn.kernels;

/**
 * Rows per block of the block-sparse kernels, which come with blocks of 128 rows and of 64. A block never crosses a
 * segment (a tile, or the text), so the last block of every segment computes empty rows up to the block size.
 */
final class BlockRows {

    static final int LARGE = 128;
    static final int SMALL = 64;

    private BlockRows() {
    }

    /** Rows computed over segments of the given lengths: each rounded up to whole blocks of {@code blockRows}. */
    static long computedRows(int[] segmentLengths, int blockRows) {
        long rows = 0;
        for (int length : segmentLengths) {
            rows += (long) (length + blockRows - 1) / blockRows * blockRows;
        }
        return rows;
    }

    /**
     * 64-row blocks where they compute at most 90% of the rows 128-row ones do (segments of at most 64 tokens, such
     * as 4×4×4 tiles, halve the work), else 128: a larger block loads each operand once for twice the rows, which
     * made 64-row blocks 4-7% slower at equal rows on an H200 (HunyuanVideo STA and dense, docs/benchmarks-bwd.md).
     */
    static int fewestComputed(int[] segmentLengths) {
        return 10 * computedRows(segmentLengths, SMALL) <= 9 * computedRows(segmentLengths, LARGE) ? SMALL : LARGE;
    }

    static void check(int blockRows) {
        if (blockRows != SMALL && blockRows != LARGE) {
            throw new IllegalArgumentException("blocks have " + SMALL + " or " + LARGE + " rows, got " + blockRows);
        }
    }
}
