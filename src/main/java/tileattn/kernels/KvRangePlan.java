package tileattn.kernels;

import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

/**
 * The forward's work tables (tile_attention.cu, tile_attention_sm90.cu, tile_attention_sm90_ws.cu): query blocks
 * that never cross a query tile, and per (head, slot) a list of KV token ranges. A slot is a query tile, or the text
 * queries. Adjacent KV tiles are merged into one range (a 3×3×3 window of 6×8×8 tiles is 9 ranges of 1152 keys),
 * video queries also read the text range, and text queries read [0, S). Heads with equal windows share their lists.
 * Text blocks come first: they are the longest, and starting them early balances the grid.
 */
public final class KvRangePlan extends BlockRangePlan {

    private final double attendedPairs;

    private KvRangePlan(Tables tables) {
        super(tables);
        double pairs = 0;
        for (int h = 0; h < heads(); h++) {
            for (int b = 0; b < blockCount(); b++) {
                pairs += (double) blockRowCount(b) * tokensOf(listOf(h, b));
            }
        }
        this.attendedPairs = pairs;
    }

    /** Sliding Tile Attention over a tile-ordered sequence, one window per head. */
    public static KvRangePlan sta(TokenLayout layout, Window[] windowsPerHead) {
        if (allWindowsFull(layout, windowsPerHead)) {
            return dense(layout.sequenceLength(), windowsPerHead.length);
        }
        return new KvRangePlan(staTables(layout, windowsPerHead, window -> StaMask.tileLists(layout.grid(), window)));
    }

    /** Dense attention over any sequence: every query reads [0, S). */
    public static KvRangePlan dense(int sequenceLength, int heads) {
        return new KvRangePlan(denseTables(sequenceLength, heads));
    }

    /**
     * Every query reads only the first {@code keys} tokens of k and v (which have the queries' shape [B, heads, S,
     * d]): cross-attention to L text keys placed at the start of each plane of padded tensors.
     */
    public static KvRangePlan prefix(int sequenceLength, int heads, int keys) {
        return new KvRangePlan(prefixTables(sequenceLength, heads, keys));
    }

    /** Σ over heads and query rows of the keys attended, for one batch element: FLOPs = 4 · this · d · B. */
    public double attendedPairs() {
        return attendedPairs;
    }

    /** This plan with blocks of at most {@code rows} rows (64 or 128), each tile (or the text) split anew; same lists. */
    public KvRangePlan withBlockRows(int rows) {
        return rows == blockRows() ? this : new KvRangePlan(reblocked(rows));
    }

    @Override
    String blockNoun() {
        return "query";
    }
}
