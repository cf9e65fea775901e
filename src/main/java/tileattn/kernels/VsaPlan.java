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
 * <p>
 * With 64-row blocks the forward packs partial tiles ({@link PackedTiles}): group g's list for a plane is
 * {@code planes · tiles + plane · groups + g}, at most {@link #packedCapacity} ranges from {@link #packedRangeBase}
 * on, built on the device from its tiles' selections. The forward's own block table, list numbering
 * ({@code tiles + groups} slots per plane) and offsets cover both kinds of list; without groups they are the
 * tables above.
 */
public final class VsaPlan {

    private final TileGrid grid;
    private final int batch;
    private final int heads;
    private final int topK;
    private final int blockRows;
    private final int backwardRows;
    private final int gradientQueryBlockCount;
    private final int keyBlockCount;
    private final DeviceBuffer tileStarts;
    private final DeviceBuffer listOf;
    private final DeviceBuffer rangeOffsets;
    private final DeviceBuffer keyBlocks;
    private final DeviceBuffer gradientQueryBlocks;
    private final ForwardTables forward;

    /** Tiles at most for packing: the union kernel keeps a byte per KV tile in 48 KiB of shared memory. */
    static final int MAX_PACKED_TILES = 48 * 1024;

    /** The forward's tables, with packed groups (see the class comment) or without (the plain lists, capacity 0). */
    private record ForwardTables(int groupCount, int capacity, DeviceBuffer groups, DeviceBuffer blocks, int blockCount,
                           DeviceBuffer listOf, DeviceBuffer rangeOffsets) {
    }

    private VsaPlan(TileGrid grid, int batch, int heads, int topK, int blockRows, int backwardRows,
                    int gradientQueryBlockCount, int keyBlockCount, DeviceBuffer tileStarts, DeviceBuffer listOf,
                    DeviceBuffer rangeOffsets, DeviceBuffer keyBlocks, DeviceBuffer gradientQueryBlocks,
                    ForwardTables forward) {
        this.grid = grid;
        this.batch = batch;
        this.heads = heads;
        this.topK = topK;
        this.blockRows = blockRows;
        this.backwardRows = backwardRows;
        this.gradientQueryBlockCount = gradientQueryBlockCount;
        this.keyBlockCount = keyBlockCount;
        this.tileStarts = tileStarts;
        this.listOf = listOf;
        this.rangeOffsets = rangeOffsets;
        this.keyBlocks = keyBlocks;
        this.gradientQueryBlocks = gradientQueryBlocks;
        this.forward = forward;
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
        DeviceBuffer[] t = TileAttentionKernel.uploadTables(scope, starts, identity, offsets, keyBlocks);
        int[] groups = blockRows == PackedTiles.BLOCK_ROWS && tiles <= MAX_PACKED_TILES ? PackedTiles.groups(starts)
                : new int[0];
        ForwardTables forward = groups.length == 0
                ? new ForwardTables(0, 0, null, TileAttentionKernel.uploadTables(scope, blocks)[0], blocks.length / 4,
                        t[1], t[2])
                : packedTables(starts, planes, topK, groups, blocks, scope);
        // The dQ kernel's query blocks are the KV blocks' table itself: both split every tile into backwardRows.
        return new VsaPlan(grid, batch, heads, topK, blockRows, backwardRows, keyBlocks.length / 4,
                keyBlocks.length / 4, t[0], t[1], t[2], t[3], t[3], forward);
    }

    private static ForwardTables packedTables(int[] starts, int planes, int topK, int[] groups, int[] singles,
                                              DeviceScope scope) {
        int tiles = starts.length - 1, groupCount = groups.length / 2, slots = tiles + groupCount;
        int capacity = Math.min(tiles, PackedTiles.MAX_MEMBERS * topK);
        int plainLists = planes * tiles, plainRanges = plainLists * topK;
        int packedLists = Math.multiplyExact(planes, groupCount);
        Math.addExact(plainRanges, Math.multiplyExact(packedLists, capacity));  // the range table's length fits an int
        int[] blocks = PackedTiles.blockTable(starts, groups, singles);
        int[] listOf = new int[Math.multiplyExact(planes, slots)];
        for (int plane = 0; plane < planes; plane++) {
            for (int slot = 0; slot < slots; slot++) {
                listOf[plane * slots + slot] = slot < tiles ? plane * tiles + slot
                        : plainLists + plane * groupCount + slot - tiles;
            }
        }
        int[] offsets = new int[plainLists + packedLists + 1];
        for (int list = 0; list < offsets.length; list++) {
            offsets[list] = list <= plainLists ? list * topK : plainRanges + (list - plainLists) * capacity;
        }
        DeviceBuffer[] t = TileAttentionKernel.uploadTables(scope, groups, blocks, listOf, offsets);
        return new ForwardTables(groupCount, capacity, t[0], t[1], blocks.length / 4, t[2], t[3]);
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

    DeviceBuffer tileStarts() {
        return tileStarts;
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

    /** Groups of tiles packed into one block of the forward (0 without packing). */
    int groupCount() {
        return forward.groupCount;
    }

    /** {first tile, member count} per group, for the union kernel. */
    DeviceBuffer groups() {
        return forward.groups;
    }

    /** Ranges of each group's list: its tiles' selections hold at most this many tiles together. */
    int packedCapacity() {
        return forward.capacity;
    }

    /** Where the groups' lists start in the range table: after every plane's query tiles' lists. */
    long packedRangeBase() {
        return (long) planes() * tiles() * topK;
    }

    /** Entries of the range table: the query tiles' lists, then the groups'. */
    long rangeCount() {
        return packedRangeBase() + (long) planes() * forward.groupCount * forward.capacity;
    }

    /** The fine forward's work over a workspace's ranges (and, with packed groups, their member bits). */
    PlaneLists forwardLists(DeviceBuffer ranges, DeviceBuffer members) {
        return new PlaneLists(forward.blocks, forward.blockCount, blockRows, forward.listOf, forward.rangeOffsets,
                ranges, forward.groupCount > 0 ? members : null, tiles() + forward.groupCount);
    }

    @Override
    public String toString() {
        return "VsaPlan[" + grid + ", B=" + batch + ", heads=" + heads + ", k=" + topK + ", " + forward.blockCount
                + " query blocks of <= " + blockRows + " rows" + (forward.groupCount > 0 ? " (" + forward.groupCount
                + " packing several tiles)" : "") + ", backward blocks of <= " + backwardRows + " rows]";
    }
}
