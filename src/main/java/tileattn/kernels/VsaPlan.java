package tileattn.kernels;

import java.util.Arrays;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.layout.TileGrid;

/**
 * The fixed work tables of VSA on the GPU for one tile grid, batch, head count and k, in device memory: the tile
 * starts, the fine kernel's query blocks (at most {@link #blockRows} rows, never crossing a tile) and its list
 * numbering. Every (batch, head) pair is a plane with lists of its own: the list of (plane, query tile) is
 * {@code plane · tiles + tile}, and it holds k KV ranges, one per selected tile, so its ranges start at
 * {@code list · k}. The ranges themselves depend on the data: the coarse kernel writes them every forward. The
 * backward's KV blocks (per KV tile, for dK/dV) are numbered the same way; their lists of query ranges are built on
 * the device from the forward's selection. The backward's kernels have blocks of {@link #backwardRows} rows, which
 * may differ from the forward's: its dQ kernel reads query blocks of that size over the same lists.
 */
public final class VsaPlan {

    private final TileGrid grid;
    private final int batch;
    private final int heads;
    private final int topK;
    private final int blockRows;
    private final int backwardRows;
    private final int queryBlockCount;
    private final int gradientQueryBlockCount;
    private final int keyBlockCount;
    private final DeviceBuffer tileStarts;
    private final DeviceBuffer queryBlocks;
    private final DeviceBuffer listOf;
    private final DeviceBuffer rangeOffsets;
    private final DeviceBuffer keyBlocks;
    private final DeviceBuffer gradientQueryBlocks;

    private VsaPlan(TileGrid grid, int batch, int heads, int topK, int blockRows, int backwardRows,
                    int queryBlockCount, int gradientQueryBlockCount, int keyBlockCount, DeviceBuffer tileStarts,
                    DeviceBuffer queryBlocks, DeviceBuffer listOf, DeviceBuffer rangeOffsets, DeviceBuffer keyBlocks,
                    DeviceBuffer gradientQueryBlocks) {
        this.grid = grid;
        this.batch = batch;
        this.heads = heads;
        this.topK = topK;
        this.blockRows = blockRows;
        this.backwardRows = backwardRows;
        this.queryBlockCount = queryBlockCount;
        this.gradientQueryBlockCount = gradientQueryBlockCount;
        this.keyBlockCount = keyBlockCount;
        this.tileStarts = tileStarts;
        this.queryBlocks = queryBlocks;
        this.listOf = listOf;
        this.rangeOffsets = rangeOffsets;
        this.keyBlocks = keyBlocks;
        this.gradientQueryBlocks = gradientQueryBlocks;
    }

    /**
     * Builds the tables on the host and uploads them into {@code scope}.
     *
     * @param blockRows    query rows per block of the fine kernel: 128, or 64 (Hopper kernel only)
     * @param backwardRows rows per block of the backward's dK/dV and dQ kernels: 128 or 64
     */
    static VsaPlan upload(TileGrid grid, int batch, int heads, int topK, int blockRows, int backwardRows,
                          DeviceScope scope) {
        int tiles = grid.tileCount();
        if (batch < 1 || heads < 1) {
            throw new IllegalArgumentException("batch and heads must be positive, got B = " + batch + ", heads = " + heads);
        }
        if (topK < 1 || topK > tiles) {
            throw new IllegalArgumentException("topK = " + topK + " out of range 1.." + tiles + " (tiles of " + grid + ")");
        }
        BlockRows.check(blockRows);
        BlockRows.check(backwardRows);
        int planes = Math.multiplyExact(batch, heads);
        int lists = Math.multiplyExact(planes, tiles);
        Math.multiplyExact(lists, topK);  // the range table's length must fit an int
        int[] starts = grid.tileStarts();
        int[] blocks = queryBlockTable(starts, blockRows);
        int[] identity = new int[lists];
        Arrays.setAll(identity, i -> i);
        int[] offsets = new int[lists + 1];
        Arrays.setAll(offsets, i -> i * topK);
        int[] keyBlocks = queryBlockTable(starts, backwardRows);
        DeviceBuffer[] t = TileAttentionKernel.uploadTables(scope, starts, blocks, identity, offsets, keyBlocks);
        // The dQ kernel's query blocks are the KV blocks' table itself: both split every tile into backwardRows.
        return new VsaPlan(grid, batch, heads, topK, blockRows, backwardRows, blocks.length / 4,
                keyBlocks.length / 4, keyBlocks.length / 4, t[0], t[1], t[2], t[3], t[4], t[4]);
    }

    /** {rowStart, rowCount, tile, 0} per block; tiles with the most tokens first, so long blocks start early. */
    static int[] queryBlockTable(int[] starts, int blockRows) {
        int tiles = starts.length - 1;
        Integer[] order = new Integer[tiles];
        Arrays.setAll(order, i -> i);
        Arrays.sort(order, (a, b) -> Integer.compare(starts[b + 1] - starts[b], starts[a + 1] - starts[a]));
        int count = 0;
        for (int t = 0; t < tiles; t++) {
            count += (starts[t + 1] - starts[t] + blockRows - 1) / blockRows;
        }
        int[] blocks = new int[4 * count];
        int i = 0;
        for (int t : order) {
            for (int r = starts[t]; r < starts[t + 1]; r += blockRows) {
                blocks[i++] = r;
                blocks[i++] = Math.min(blockRows, starts[t + 1] - r);
                blocks[i++] = t;
                blocks[i++] = 0;
            }
        }
        return blocks;
    }

    /**
     * Query rows the fine kernel computes with blocks of {@code blockRows}: real rows plus the empty rows of each
     * tile's last block. 64-row blocks serve tiles of at most 64 tokens (4×4×4) with no empty rows where
     * 128-row blocks would leave half of every block empty.
     */
    static long computedRows(TileGrid grid, int blockRows) {
        return BlockRows.computedRows(tileLengths(grid), blockRows);
    }

    /** Tokens per tile, in tile order. */
    static int[] tileLengths(TileGrid grid) {
        int[] starts = grid.tileStarts();
        int[] lengths = new int[starts.length - 1];
        for (int t = 0; t < lengths.length; t++) {
            lengths[t] = starts[t + 1] - starts[t];
        }
        return lengths;
    }

    public TileGrid grid() {
        return grid;
    }

    public int batch() {
        return batch;
    }

    public int heads() {
        return heads;
    }

    public int planes() {
        return batch * heads;
    }

    public int tiles() {
        return grid.tileCount();
    }

    public int topK() {
        return topK;
    }

    /** Query rows per block of the fine kernel. */
    public int blockRows() {
        return blockRows;
    }

    /** Rows per block of the backward's dK/dV and dQ kernels. */
    public int backwardRows() {
        return backwardRows;
    }

    int queryBlockCount() {
        return queryBlockCount;
    }

    DeviceBuffer tileStarts() {
        return tileStarts;
    }

    DeviceBuffer queryBlocks() {
        return queryBlocks;
    }

    DeviceBuffer listOf() {
        return listOf;
    }

    DeviceBuffer rangeOffsets() {
        return rangeOffsets;
    }

    int keyBlockCount() {
        return keyBlockCount;
    }

    /** The backward's KV blocks: at most {@link #backwardRows} keys of one tile, in the format of the query blocks. */
    DeviceBuffer keyBlocks() {
        return keyBlocks;
    }

    /** The dQ kernel's query blocks: at most {@link #backwardRows} rows of one tile (the KV blocks' table). */
    DeviceBuffer gradientQueryBlocks() {
        return gradientQueryBlocks;
    }

    int gradientQueryBlockCount() {
        return gradientQueryBlockCount;
    }

    @Override
    public String toString() {
        return "VsaPlan[" + grid + ", B=" + batch + ", heads=" + heads + ", k=" + topK + ", " + queryBlockCount
                + " query blocks of <= " + blockRows + " rows, backward blocks of <= " + backwardRows + " rows]";
    }
}
