package tileattn.kernels;

import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;

/**
 * The transpose of a {@link KvRangePlan}, for the backward's dK/dV kernel: KV blocks of at most
 * {@link #blockRows} keys that never cross a KV tile (or into the text), and per (head, slot) the list of QUERY
 * token ranges that attend the slot. A slot is a KV tile, or the text keys. For STA, KV tile k is read by the
 * query tiles whose window holds k (adjacent ones merged into one range) and by every text query; text keys are
 * read by every query, [0, S). Heads with equal windows share their lists. Text blocks come first: each of them
 * walks the whole sequence, and starting them early balances the grid.
 */
public final class QueryRangePlan extends BlockRangePlan {

    private QueryRangePlan(Tables tables) {
        super(tables);
    }

    /** Sliding Tile Attention over a tile-ordered sequence, one window per head (the keys' side). */
    public static QueryRangePlan sta(TokenLayout layout, Window[] windowsPerHead) {
        if (allWindowsFull(layout, windowsPerHead)) {
            return dense(layout.sequenceLength(), windowsPerHead.length);
        }
        int tiles = layout.grid().tileCount();
        return new QueryRangePlan(staTables(layout, windowsPerHead,
                window -> StaMask.tileLists(layout.grid(), window).transpose(tiles)));
    }

    /** Dense attention over any sequence: every key is read by every query, [0, S). */
    public static QueryRangePlan dense(int sequenceLength, int heads) {
        return new QueryRangePlan(denseTables(sequenceLength, heads));
    }

    /** This plan with blocks of at most {@code rows} rows (64 or 128), each tile (or the text) split anew; same lists. */
    public QueryRangePlan withBlockRows(int rows) {
        return rows == blockRows() ? this : new QueryRangePlan(reblocked(rows));
    }

    @Override
    String blockNoun() {
        return "KV";
    }
}
