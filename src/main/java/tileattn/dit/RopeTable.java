package tileattn.dit;

import tileattn.layout.Shape3;

/**
 * Wan's 3D rotary position embedding for a sequence of video tokens in a given order. The head's d/2 rotary
 * pairs (x[2i], x[2i+1]) are split among T, H and W as {@link WanConfig#ropePairs()}; pair j of an axis with n
 * pairs turns by position · θ^(−j/n), the position being the token's frame, row or column in the token grid.
 * The tables are built once per forward for the order the tokens are in (tile order), so no layer reorders.
 */
final class RopeTable {

    private final int pairs;
    private final float[] cos;
    private final float[] sin;

    /** @param rasterOfPosition the raster index (t·H·W + h·W + w) of the token at each sequence position */
    RopeTable(WanConfig config, Shape3 grid, int[] rasterOfPosition) {
        int[] split = config.ropePairs();
        this.pairs = config.headDim() / 2;
        int s = rasterOfPosition.length;
        this.cos = new float[s * pairs];
        this.sin = new float[s * pairs];
        double[][] freq = new double[3][];
        for (int axis = 0; axis < 3; axis++) {
            freq[axis] = new double[split[axis]];
            for (int j = 0; j < split[axis]; j++) {
                freq[axis][j] = StrictMath.pow(config.ropeTheta(), -(double) j / split[axis]);
            }
        }
        for (int p = 0; p < s; p++) {
            int raster = rasterOfPosition[p];
            int[] coord = {raster / (grid.h() * grid.w()), (raster / grid.w()) % grid.h(), raster % grid.w()};
            int pair = 0;
            for (int axis = 0; axis < 3; axis++) {
                for (int j = 0; j < split[axis]; j++, pair++) {
                    double angle = coord[axis] * freq[axis][j];
                    cos[p * pairs + pair] = (float) StrictMath.cos(angle);
                    sin[p * pairs + pair] = (float) StrictMath.sin(angle);
                }
            }
        }
    }

    /** Rotary pairs per head (d/2). */
    int pairs() {
        return pairs;
    }

    /** cos of every (position, pair) angle, [S, d/2] row-major; the GPU model uploads these. */
    float[] cosTable() {
        return cos.clone();
    }

    float[] sinTable() {
        return sin.clone();
    }

    /** Rotates one head vector {@code src[srcOff .. srcOff+d)} of the token at {@code position} into dst. */
    void rotate(float[] src, int srcOff, float[] dst, int dstOff, int position) {
        int t = position * pairs;
        for (int i = 0; i < pairs; i++) {
            float x0 = src[srcOff + 2 * i], x1 = src[srcOff + 2 * i + 1];
            float c = cos[t + i], s = sin[t + i];
            dst[dstOff + 2 * i] = x0 * c - x1 * s;
            dst[dstOff + 2 * i + 1] = x0 * s + x1 * c;
        }
    }
}
