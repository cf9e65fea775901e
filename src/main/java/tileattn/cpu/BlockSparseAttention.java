package tileattn.cpu;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import tileattn.mask.TileLists;
import tileattn.tensor.FloatTensor;

/**
 * The shared fp32 engine behind dense, STA and VSA attention on the CPU: flash-style attention (online softmax,
 * no S×S matrix) in which each query tile reads only the key ranges it is allowed to, so time shrinks with
 * sparsity. Tensors are [B, heads, S, d] in tile order; the caller has checked their shapes.
 *
 * <p>Work items are (batch·head, query tile, or a slice of at most {@value #ITEM_ROWS} rows of a large tile or
 * of the text) and run in parallel on the common fork-join pool. Inside an item the query rows are held
 * transposed and scaled in blocks of 64; every block of {@value #KEY_BLOCK} keys is loaded once and applied to all
 * row blocks of the item while it is still in cache.
 */
public final class BlockSparseAttention {

    static final int KEY_BLOCK = 64;
    static final int ITEM_ROWS = 256;
    private static final int ROW_BLOCK = 64;

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private BlockSparseAttention() {
    }

    /** A query row range of one (batch, head) and the key ranges {@code [kv[2i], kv[2i+1])} it attends. */
    private record Item(int bh, int row0, int row1, int[] kv) {
    }

    /** Every query attends every key. */
    public static AttentionResult dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale, VectorOps ops) {
        int bhCount = q.dim(0) * q.dim(1), s = q.dim(2);
        List<Item> items = new ArrayList<>();
        int[] all = {0, s};
        for (int bh = 0; bh < bhCount; bh++) {
            addSlices(items, bh, 0, s, all);
        }
        return run(q, k, v, scale, items, ops);
    }

    /**
     * Video query tiles attend the video tiles of their list plus all text tokens; text queries attend everything.
     *
     * @param tileStarts tile-order start of each video tile and, last, the number of video tokens
     * @param listsPerBatchHead KV tiles per query tile, indexed batch·heads + head
     * @param textLength text tokens after the video; S must equal video tokens + textLength
     */
    public static AttentionResult sparse(FloatTensor q, FloatTensor k, FloatTensor v, float scale, int[] tileStarts,
            TileLists[] listsPerBatchHead, int textLength, VectorOps ops) {
        int bhCount = q.dim(0) * q.dim(1), s = q.dim(2);
        int tiles = tileStarts.length - 1;
        int video = tileStarts[tiles];
        if (video + textLength != s) {
            throw new IllegalArgumentException("S=" + s + " but the tiles hold " + video + " video tokens and "
                    + textLength + " text tokens");
        }
        if (listsPerBatchHead.length != bhCount) {
            throw new IllegalArgumentException("expected " + bhCount + " tile lists (batch x heads), got "
                    + listsPerBatchHead.length);
        }
        Map<TileLists, int[][]> rangesByLists = new IdentityHashMap<>();
        List<Item> items = new ArrayList<>();
        int[] all = {0, s};
        for (int bh = 0; bh < bhCount; bh++) {
            TileLists lists = listsPerBatchHead[bh];
            if (lists.queryTiles() != tiles) {
                throw new IllegalArgumentException("tile lists for batch x head " + bh + " cover " + lists.queryTiles()
                        + " query tiles, the layout has " + tiles);
            }
            int[][] ranges = rangesByLists.computeIfAbsent(lists, l -> keyRanges(l, tileStarts, video, s));
            for (int tile = 0; tile < tiles; tile++) {
                addSlices(items, bh, tileStarts[tile], tileStarts[tile + 1], ranges[tile]);
            }
            addSlices(items, bh, video, s, all);
        }
        return run(q, k, v, scale, items, ops);
    }

    /** Per query tile, its KV tiles as token ranges with neighbours merged, then the text range. */
    private static int[][] keyRanges(TileLists lists, int[] tileStarts, int video, int s) {
        int[][] out = new int[lists.queryTiles()][];
        int[] buf = new int[2 * (tileStarts.length + 1)];
        for (int qTile = 0; qTile < out.length; qTile++) {
            int n = 0;
            for (int i = 0; i < lists.count(qTile); i++) {
                int kTile = lists.get(qTile, i);
                n = append(buf, n, tileStarts[kTile], tileStarts[kTile + 1]);
            }
            n = append(buf, n, video, s);
            out[qTile] = Arrays.copyOf(buf, n);
        }
        return out;
    }

    private static int append(int[] ranges, int n, int start, int end) {
        if (start == end) {
            return n;
        }
        if (n > 0 && ranges[n - 1] == start) {
            ranges[n - 1] = end;
            return n;
        }
        ranges[n] = start;
        ranges[n + 1] = end;
        return n + 2;
    }

    /** Splits a query row range into items of at most ITEM_ROWS rows of near-equal size. */
    private static void addSlices(List<Item> items, int bh, int row0, int row1, int[] kv) {
        int rows = row1 - row0;
        if (rows == 0) {
            return;
        }
        int parts = (rows + ITEM_ROWS - 1) / ITEM_ROWS;
        for (int p = 0; p < parts; p++) {
            items.add(new Item(bh, row0 + (int) ((long) rows * p / parts), row0 + (int) ((long) rows * (p + 1) / parts), kv));
        }
    }

    private static AttentionResult run(FloatTensor q, FloatTensor k, FloatTensor v, float scale, List<Item> items,
            VectorOps ops) {
        int b = q.dim(0), heads = q.dim(1), s = q.dim(2);
        FloatTensor out = FloatTensor.zeros(q.shape());
        FloatTensor lse = FloatTensor.zeros(b, heads, s);
        Item[] work = items.toArray(Item[]::new);
        IntStream.range(0, work.length).parallel()
                .forEach(i -> attend(work[i], q, k, v, scale, out, lse, ops, SCRATCH.get()));
        return new AttentionResult(out, lse);
    }

    private static void attend(Item item, FloatTensor qT, FloatTensor kT, FloatTensor vT, float scale, FloatTensor outT,
            FloatTensor lseT, VectorOps ops, Scratch scratch) {
        int s = qT.dim(2), d = qT.dim(3);
        int lanes = ops.lanes();
        int rowBlock = Math.max(ROW_BLOCK, lanes) / lanes * lanes;
        int rows = item.row1 - item.row0;
        int blocks = (rows + rowBlock - 1) / rowBlock;
        scratch.ensure(blocks * rowBlock, d, rowBlock);
        float[] q = qT.data(), k = kT.data(), v = vT.data(), out = outT.data(), lse = lseT.data();
        float[] qt = scratch.qt, ot = scratch.ot, st = scratch.st, m = scratch.m, l = scratch.l, alpha = scratch.alpha;
        int base = item.bh * s * d;

        for (int blk = 0; blk < blocks; blk++) {
            int r0 = blk * rowBlock, real = Math.min(rowBlock, rows - r0), w = roundUp(real, lanes);
            int qb = r0 * d;
            for (int i = 0; i < real; i++) {
                int src = base + (item.row0 + r0 + i) * d;
                for (int dd = 0; dd < d; dd++) {
                    qt[qb + dd * w + i] = q[src + dd] * scale;
                }
            }
            for (int i = real; i < w; i++) {
                for (int dd = 0; dd < d; dd++) {
                    qt[qb + dd * w + i] = 0f;
                }
            }
            Arrays.fill(ot, qb, qb + d * w, 0f);
            Arrays.fill(m, r0, r0 + w, Float.NEGATIVE_INFINITY);
            Arrays.fill(l, r0, r0 + w, 0f);
        }

        int[] kv = item.kv;
        for (int x = 0; x < kv.length; x += 2) {
            for (int j0 = kv[x]; j0 < kv[x + 1]; j0 += KEY_BLOCK) {
                int n = Math.min(KEY_BLOCK, kv[x + 1] - j0);
                int kOff = base + j0 * d;
                for (int blk = 0; blk < blocks; blk++) {
                    int r0 = blk * rowBlock, w = roundUp(Math.min(rowBlock, rows - r0), lanes);
                    int qb = r0 * d;
                    ops.scores(k, kOff, n, d, qt, qb, w, st);
                    ops.softmaxStep(st, n, w, m, l, r0, alpha);
                    ops.accumulate(st, n, w, v, kOff, d, ot, qb, alpha);
                }
            }
        }

        for (int blk = 0; blk < blocks; blk++) {
            int r0 = blk * rowBlock, real = Math.min(rowBlock, rows - r0), w = roundUp(real, lanes);
            int qb = r0 * d;
            for (int i = 0; i < real; i++) {
                int row = item.row0 + r0 + i;
                float sum = l[r0 + i];
                float inv = sum == 0f ? 0f : 1f / sum;
                int dst = base + row * d;
                for (int dd = 0; dd < d; dd++) {
                    out[dst + dd] = ot[qb + dd * w + i] * inv;
                }
                lse[item.bh * s + row] = sum == 0f ? Float.NEGATIVE_INFINITY : m[r0 + i] + (float) Math.log(sum);
            }
        }
    }

    private static int roundUp(int x, int multiple) {
        return (x + multiple - 1) / multiple * multiple;
    }

    /** Per-thread buffers, grown on demand and reused across items. */
    private static final class Scratch {
        float[] qt = new float[0], ot = new float[0], st = new float[0], m = new float[0], l = new float[0],
                alpha = new float[0];

        void ensure(int paddedRows, int d, int rowBlock) {
            if (qt.length < paddedRows * d) {
                qt = new float[paddedRows * d];
                ot = new float[paddedRows * d];
            }
            if (m.length < paddedRows) {
                m = new float[paddedRows];
                l = new float[paddedRows];
            }
            if (st.length < KEY_BLOCK * rowBlock) {
                st = new float[KEY_BLOCK * rowBlock];
                alpha = new float[rowBlock];
            }
        }
    }
}
