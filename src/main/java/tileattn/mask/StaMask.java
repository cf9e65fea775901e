package tileattn.mask;

import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;

/** Sliding Tile Attention: which KV tiles each query tile of a grid reads under one window. */
public final class StaMask {

    private StaMask() {
    }

    /**
     * The KV tiles of every query tile, ascending. Windows are clamped at the edges so they keep their full
     * size; text tokens are not tiles and are handled by the kernels themselves.
     */
    public static TileLists tileLists(TileGrid grid, Window window) {
        Shape3 n = grid.tiles();
        window.checkFits(n);
        int tiles = grid.tileCount();
        int kt = Math.min(window.t(), n.t()), kh = Math.min(window.h(), n.h()), kw = Math.min(window.w(), n.w());
        int per = kt * kh * kw;
        int[] offsets = new int[tiles + 1];
        int[] kv = new int[tiles * per];
        int pos = 0;
        for (int q = 0; q < tiles; q++) {
            int st = Window.windowStart(grid.coord(q, 0), window.t(), n.t());
            int sh = Window.windowStart(grid.coord(q, 1), window.h(), n.h());
            int sw = Window.windowStart(grid.coord(q, 2), window.w(), n.w());
            for (int a = 0; a < kt; a++) {
                for (int b = 0; b < kh; b++) {
                    for (int c = 0; c < kw; c++) {
                        kv[pos++] = grid.tileIndex(st + a, sh + b, sw + c);
                    }
                }
            }
            offsets[q + 1] = pos;
        }
        return new TileLists(offsets, kv);
    }

    /** Whether a video query token in tile qTile may attend to a video key token in tile kTile (the literal rule). */
    public static boolean allows(TileGrid grid, Window window, int qTile, int kTile) {
        Shape3 n = grid.tiles();
        for (int a = 0; a < 3; a++) {
            if (!Window.allows(grid.coord(qTile, a), grid.coord(kTile, a), window.get(a), n.get(a))) {
                return false;
            }
        }
        return true;
    }

    /**
     * Fraction of video query/key token pairs that the window skips (text excluded), counting real tokens of
     * partial tiles.
     */
    public static double sparsity(TileGrid grid, Window window) {
        TileLists lists = tileLists(grid, window);
        double attended = 0;
        for (int q = 0; q < lists.queryTiles(); q++) {
            long keys = 0;
            for (int i = 0; i < lists.count(q); i++) {
                keys += grid.tileTokens(lists.get(q, i));
            }
            attended += (double) grid.tileTokens(q) * keys;
        }
        double all = (double) grid.videoTokens() * grid.videoTokens();
        return 1.0 - attended / all;
    }
}
