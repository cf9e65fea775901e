package tileattn.kernels;

import java.util.Arrays;

/**
 * Partial query tiles packed into the fine forward's 64-row blocks (tile_attention_sm90.cu's _bm64p_ entries). A
 * block over a tile of 16 real rows computes four times the rows it keeps; up to four consecutive tiles whose
 * lengths are multiples of 16 (the rows of one warp) and sum to at most 64 share one block instead, which walks the
 * union of their selections once, each warp masking the keys its own tile did not select. Consecutive tiles in tile
 * order are neighbours along W, whose selections overlap most (docs/benchmarks.md, ninth session). Wan-2.1's 480p
 * grid (21×30×52 in 4×4×4 tiles) has 91 tiles of 16 rows and 65 of 32 among its 624.
 */
final class PackedTiles {

    static final int BLOCK_ROWS = BlockRows.SMALL;
    static final int WARP_ROWS = 16;
    static final int MAX_MEMBERS = BLOCK_ROWS / WARP_ROWS;
    /** The query-block table's fourth entry for a packed block: this flag, and the member of warp w in bits 2w, 2w+1. */
    static final int PACKED = 256;

    private PackedTiles() {
    }

    /** {first tile, member count} of each group of at least two consecutive tiles that share a block. */
    static int[] groups(int[] starts) {
        int tiles = starts.length - 1;
        int[] groups = new int[2 * (tiles / 2)];
        int count = 0, first = -1, members = 0, rows = 0;
        for (int t = 0; t <= tiles; t++) {
            int length = t < tiles ? starts[t + 1] - starts[t] : 0;
            boolean packable = length > 0 && length < BLOCK_ROWS && length % WARP_ROWS == 0;
            if (members > 0 && (!packable || members == MAX_MEMBERS || rows + length > BLOCK_ROWS)) {
                if (members > 1) {
                    groups[2 * count] = first;
                    groups[2 * count + 1] = members;
                    count++;
                }
                members = 0;
            }
            if (packable) {
                if (members == 0) {
                    first = t;
                    rows = 0;
                }
                members++;
                rows += length;
            }
        }
        return Arrays.copyOf(groups, 2 * count);
    }

    /**
     * The forward's query blocks {rowStart, rowCount, slot, packing}: one per group first (slot {@code tiles + g}),
     * then {@code singles}' blocks (a {@link VsaPlan#queryBlockTable} of 64-row blocks) of the tiles in no group.
     */
    static int[] blockTable(int[] starts, int[] groups, int[] singles) {
        int tiles = starts.length - 1, groupCount = groups.length / 2;
        boolean[] grouped = new boolean[tiles];
        int[] blocks = new int[4 * groupCount + singles.length];
        int i = 0;
        for (int g = 0; g < groupCount; g++) {
            int first = groups[2 * g], members = groups[2 * g + 1];
            int packing = PACKED;
            for (int m = 0; m < members; m++) {
                grouped[first + m] = true;
                for (int r = starts[first + m]; r < starts[first + m + 1]; r += WARP_ROWS) {
                    int warp = (r - starts[first]) / WARP_ROWS;
                    packing |= m << (2 * warp);
                }
            }
            blocks[i++] = starts[first];
            blocks[i++] = starts[first + members] - starts[first];
            blocks[i++] = tiles + g;
            blocks[i++] = packing;
        }
        for (int b = 0; b < singles.length; b += 4) {
            if (!grouped[singles[b + 2]]) {
                System.arraycopy(singles, b, blocks, i, 4);
                i += 4;
            }
        }
        return Arrays.copyOf(blocks, i);
    }
}
