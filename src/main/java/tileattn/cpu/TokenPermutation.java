package tileattn.cpu;

import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.tensor.FloatTensor;

/** Moves the tokens (axis 2) of [B, heads, S, d] tensors between raster order and tile order. */
public final class TokenPermutation {

    private TokenPermutation() {
    }

    /** Video and text tokens in raster order to tile order (text keeps its place). */
    public static FloatTensor toTileOrder(FloatTensor raster, TokenLayout layout) {
        return scatter(raster, layout.rasterToTileOrder());
    }

    public static FloatTensor toRaster(FloatTensor tileOrder, TokenLayout layout) {
        return scatter(tileOrder, layout.tileOrderToRaster());
    }

    /** Video-only tensors (S = T·H·W) in raster order to the tile order of grid. */
    public static FloatTensor toTileOrder(FloatTensor raster, TileGrid grid) {
        return scatter(raster, grid.rasterToTileOrder());
    }

    public static FloatTensor toRaster(FloatTensor tileOrder, TileGrid grid) {
        return scatter(tileOrder, grid.tileOrderToRaster());
    }

    /** Token i of x goes to position dest[i] of the result. */
    static FloatTensor scatter(FloatTensor x, int[] dest) {
        if (x.rank() != 4 || x.dim(2) != dest.length) {
            throw new IllegalArgumentException("expected a [B, heads, S, d] tensor with S=" + dest.length
                    + " tokens, got shape " + x.shapeString());
        }
        int planes = x.dim(0) * x.dim(1), s = x.dim(2), d = x.dim(3);
        float[] src = x.data(), out = new float[src.length];
        for (int p = 0; p < planes; p++) {
            int base = p * s * d;
            for (int i = 0; i < s; i++) {
                System.arraycopy(src, base + i * d, out, base + dest[i] * d, d);
            }
        }
        return new FloatTensor(x.shape(), out);
    }
}
