package tileattn.cpu;

import java.util.IdentityHashMap;
import java.util.Map;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * A sequence cut into blocks of consecutive tokens, and per batch·heads slice which KV blocks each query block
 * reads ({@code reads}) together with its transpose, which query blocks read each KV block ({@code readBy}).
 * Queries and keys share the partition because attention here is self-attention over one sequence. The
 * transpose lets a backward pass own each KV block's dK and dV rows without synchronisation.
 */
record BlockPattern(int[] starts, TileLists[] reads, TileLists[] readBy) {

    /** Text tokens and dense sequences are cut into blocks of this many tokens. */
    static final int CHUNK = 64;

    int blocks() {
        return starts.length - 1;
    }

    int sequenceLength() {
        return starts[starts.length - 1];
    }

    /** Every block reads every block. */
    static BlockPattern dense(int sequenceLength, int slices) {
        int[] starts = chunks(0, sequenceLength, new int[]{0});
        TileLists all = TileLists.dense(starts.length - 1);
        TileLists[] lists = new TileLists[slices];
        java.util.Arrays.fill(lists, all);
        return new BlockPattern(starts, lists, lists);
    }

    /**
     * STA over a layout in tile order: one block per video tile, then the text in chunks. A video tile reads its
     * window's tiles and all text; a text chunk reads everything. {@code windows} has one window per head.
     */
    static BlockPattern sta(TokenLayout layout, Window[] windows, int batch) {
        int tiles = layout.grid().tileCount();
        int[] starts = chunks(layout.videoTokens(), layout.sequenceLength(), layout.grid().tileStarts());
        int blocks = starts.length - 1;
        TileLists[] perHead = new TileLists[windows.length];
        for (int h = 0; h < windows.length; h++) {
            TileLists video = StaMask.tileLists(layout.grid(), windows[h]);
            int[] offsets = new int[blocks + 1];
            int[] kv = new int[video.totalPairs() + tiles * (blocks - tiles) + (blocks - tiles) * blocks];
            int pos = 0;
            for (int b = 0; b < blocks; b++) {
                if (b < tiles) {
                    for (int i = 0; i < video.count(b); i++) {
                        kv[pos++] = video.get(b, i);
                    }
                    for (int t = tiles; t < blocks; t++) {
                        kv[pos++] = t;
                    }
                } else {
                    for (int t = 0; t < blocks; t++) {
                        kv[pos++] = t;
                    }
                }
                offsets[b + 1] = pos;
            }
            perHead[h] = new TileLists(offsets, kv);
        }
        TileLists[] reads = new TileLists[batch * windows.length];
        for (int s = 0; s < reads.length; s++) {
            reads[s] = perHead[s % windows.length];
        }
        return withTranspose(starts, reads);
    }

    /** Blocks given by {@code starts} with per-slice lists; the transposes are computed once per distinct list. */
    static BlockPattern withTranspose(int[] starts, TileLists[] reads) {
        Map<TileLists, TileLists> done = new IdentityHashMap<>();
        TileLists[] readBy = new TileLists[reads.length];
        for (int s = 0; s < reads.length; s++) {
            readBy[s] = done.computeIfAbsent(reads[s], l -> transpose(l, starts.length - 1));
        }
        return new BlockPattern(starts, reads, readBy);
    }

    /** The query blocks that read each KV block, ascending. */
    static TileLists transpose(TileLists lists, int blocks) {
        int[] offsets = new int[blocks + 1];
        for (int k : lists.kvTiles()) {
            offsets[k + 1]++;
        }
        for (int b = 0; b < blocks; b++) {
            offsets[b + 1] += offsets[b];
        }
        int[] fill = java.util.Arrays.copyOf(offsets, blocks);
        int[] queries = new int[lists.totalPairs()];
        for (int q = 0; q < lists.queryTiles(); q++) {
            for (int i = 0; i < lists.count(q); i++) {
                queries[fill[lists.get(q, i)]++] = q;
            }
        }
        return new TileLists(offsets, queries);
    }

    /** {@code prefix} (block starts ending at {@code from}) extended by chunks of {@link #CHUNK} up to {@code to}. */
    private static int[] chunks(int from, int to, int[] prefix) {
        int extra = (to - from + CHUNK - 1) / CHUNK;
        int[] starts = java.util.Arrays.copyOf(prefix, prefix.length + extra);
        for (int c = 0; c < extra; c++) {
            starts[prefix.length + c] = Math.min(to, from + (c + 1) * CHUNK);
        }
        return starts;
    }
}
