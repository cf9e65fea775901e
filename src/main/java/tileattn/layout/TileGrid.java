package tileattn.layout;

import java.util.Arrays;

/**
 * A video of T×H×W tokens cut into tiles of t×h×w tokens. Tiles are numbered T-major, then H, then W; the
 * tokens of a tile are stored contiguously in raster order ("tile order"). Edge tiles of a video whose size is
 * not a multiple of the tile are partial and hold only their real tokens, so the tile-order sequence has exactly
 * T·H·W tokens and no padding.
 */
public final class TileGrid {

    private final Shape3 video;
    private final Shape3 tile;
    private final Shape3 tiles;
    private final int[] tileStarts;

    public TileGrid(Shape3 video, Shape3 tile) {
        this.video = video;
        this.tile = tile;
        this.tiles = new Shape3(ceilDiv(video.t(), tile.t()), ceilDiv(video.h(), tile.h()), ceilDiv(video.w(), tile.w()));
        int n = tiles.volume();
        this.tileStarts = new int[n + 1];
        for (int i = 0; i < n; i++) {
            tileStarts[i + 1] = tileStarts[i] + tileTokens(i);
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    public Shape3 video() {
        return video;
    }

    public Shape3 tile() {
        return tile;
    }

    /** Number of tiles per dimension, N_t × N_h × N_w (partial tiles count). */
    public Shape3 tiles() {
        return tiles;
    }

    public int tileCount() {
        return tileStarts.length - 1;
    }

    public int videoTokens() {
        return video.volume();
    }

    public int tileIndex(int it, int ih, int iw) {
        return (it * tiles.h() + ih) * tiles.w() + iw;
    }

    /** Tile coordinates (i_t, i_h, i_w) of a tile index. */
    public int coord(int tileIndex, int axis) {
        return switch (axis) {
            case 0 -> tileIndex / (tiles.h() * tiles.w());
            case 1 -> tileIndex / tiles.w() % tiles.h();
            case 2 -> tileIndex % tiles.w();
            default -> throw new IndexOutOfBoundsException("axis " + axis);
        };
    }

    /** Real extent of a tile along an axis (smaller than the tile shape for edge tiles). */
    public int tileExtent(int tileIndex, int axis) {
        int full = tile.get(axis);
        int start = coord(tileIndex, axis) * full;
        return Math.min(full, video.get(axis) - start);
    }

    /** Number of real tokens in a tile. */
    public int tileTokens(int tileIndex) {
        return tileExtent(tileIndex, 0) * tileExtent(tileIndex, 1) * tileExtent(tileIndex, 2);
    }

    /** Position of the tile's first token in tile order. */
    public int tileStart(int tileIndex) {
        return tileStarts[tileIndex];
    }

    /** Prefix sums of tile sizes: tile i occupies [starts[i], starts[i+1]) in tile order. A copy. */
    public int[] tileStarts() {
        return tileStarts.clone();
    }

    /** The tile holding a video token given by its raster coordinates. */
    public int tileOf(int t, int h, int w) {
        return tileIndex(t / tile.t(), h / tile.h(), w / tile.w());
    }

    /** {@code perm[rasterIndex] = tileOrderIndex} for every video token. */
    public int[] rasterToTileOrder() {
        int[] perm = new int[videoTokens()];
        for (int tileIdx = 0; tileIdx < tileCount(); tileIdx++) {
            int t0 = coord(tileIdx, 0) * tile.t(), h0 = coord(tileIdx, 1) * tile.h(), w0 = coord(tileIdx, 2) * tile.w();
            int et = tileExtent(tileIdx, 0), eh = tileExtent(tileIdx, 1), ew = tileExtent(tileIdx, 2);
            int pos = tileStarts[tileIdx];
            for (int a = 0; a < et; a++) {
                for (int b = 0; b < eh; b++) {
                    int rowStart = ((t0 + a) * video.h() + (h0 + b)) * video.w() + w0;
                    for (int c = 0; c < ew; c++) {
                        perm[rowStart + c] = pos++;
                    }
                }
            }
        }
        return perm;
    }

    /** {@code perm[tileOrderIndex] = rasterIndex}, the inverse of {@link #rasterToTileOrder()}. */
    public int[] tileOrderToRaster() {
        int[] forward = rasterToTileOrder();
        int[] inverse = new int[forward.length];
        for (int i = 0; i < forward.length; i++) {
            inverse[forward[i]] = i;
        }
        return inverse;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TileGrid g && g.video.equals(video) && g.tile.equals(tile);
    }

    @Override
    public int hashCode() {
        return video.hashCode() * 31 + tile.hashCode();
    }

    @Override
    public String toString() {
        return "video " + video + " in tiles " + tile + " (grid " + tiles + ", " + tileCount() + " tiles"
                + (Arrays.stream(new int[]{0, 1, 2}).anyMatch(a -> video.get(a) % tile.get(a) != 0) ? ", partial edges" : "")
                + ")";
    }
}
