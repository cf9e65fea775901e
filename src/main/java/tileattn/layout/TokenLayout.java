package tileattn.layout;

/**
 * The whole attention sequence: the video tokens of a {@link TileGrid} followed by {@code textLength} text
 * tokens. Text tokens keep their positions under the raster ↔ tile-order permutation.
 */
public record TokenLayout(TileGrid grid, int textLength) {

    public TokenLayout {
        if (textLength < 0) {
            throw new IllegalArgumentException("text length must be >= 0, got " + textLength);
        }
    }

    public static TokenLayout of(Shape3 video, Shape3 tile, int textLength) {
        return new TokenLayout(new TileGrid(video, tile), textLength);
    }

    public int videoTokens() {
        return grid.videoTokens();
    }

    /** Sequence length S = T·H·W + L. */
    public int sequenceLength() {
        return Math.addExact(grid.videoTokens(), textLength);
    }

    /** {@code perm[rasterIndex] = tileOrderIndex} over the whole sequence (text maps to itself). */
    public int[] rasterToTileOrder() {
        return withText(grid.rasterToTileOrder());
    }

    /** {@code perm[tileOrderIndex] = rasterIndex} over the whole sequence. */
    public int[] tileOrderToRaster() {
        return withText(grid.tileOrderToRaster());
    }

    private int[] withText(int[] videoPerm) {
        int n = videoPerm.length;
        int[] perm = java.util.Arrays.copyOf(videoPerm, n + textLength);
        for (int i = n; i < n + textLength; i++) {
            perm[i] = i;
        }
        return perm;
    }
}
