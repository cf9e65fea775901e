package tileattn.search;

import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.TileLists;
import tileattn.mask.Window;

/**
 * The work of one head's attention counted in (query, key) token pairs, text included: video queries read
 * their window's video tokens plus all text tokens, text queries read the whole sequence. Attention time is
 * close to proportional to it, so dense pairs / sparse pairs is the predicted speed-up.
 */
public final class AttendedPairs {

    private AttendedPairs() {
    }

    /** Pairs one head attends under a window (real tokens of partial tiles counted). */
    public static long of(TokenLayout layout, Window window) {
        TileGrid grid = layout.grid();
        TileLists lists = StaMask.tileLists(grid, window);
        long text = layout.textLength();
        long pairs = text * layout.sequenceLength();
        for (int q = 0; q < lists.queryTiles(); q++) {
            long keys = text;
            for (int i = 0; i < lists.count(q); i++) {
                keys += grid.tileTokens(lists.get(q, i));
            }
            pairs += grid.tileTokens(q) * keys;
        }
        return pairs;
    }

    /** Pairs of dense attention, S². */
    public static long dense(TokenLayout layout) {
        long s = layout.sequenceLength();
        return s * s;
    }
}
