package tileattn.dit;

import java.util.stream.IntStream;

/**
 * The normalisations of a Wan block, over the last dimension of [rows, width] row-major arrays, in place.
 * Statistics are accumulated in double so long rows (width 1536) lose nothing to fp32 summation.
 */
final class Norms {

    private Norms() {
    }

    /** LayerNorm: (x − mean) / √(var + eps) with the biased variance; weight and bias may be null (no affine). */
    static void layerNorm(float[] x, int rows, int width, float eps, float[] weight, float[] bias) {
        rows(rows, width).forEach(r -> {
            int off = r * width;
            double sum = 0;
            for (int i = 0; i < width; i++) {
                sum += x[off + i];
            }
            double mean = sum / width;
            double sq = 0;
            for (int i = 0; i < width; i++) {
                double d = x[off + i] - mean;
                sq += d * d;
            }
            float inv = (float) (1.0 / Math.sqrt(sq / width + eps));
            float m = (float) mean;
            for (int i = 0; i < width; i++) {
                float y = (x[off + i] - m) * inv;
                if (weight != null) {
                    y = y * weight[i] + bias[i];
                }
                x[off + i] = y;
            }
        });
    }

    /** RMSNorm: x / √(mean(x²) + eps) · weight. */
    static void rmsNorm(float[] x, int rows, int width, float eps, float[] weight) {
        rows(rows, width).forEach(r -> {
            int off = r * width;
            double sq = 0;
            for (int i = 0; i < width; i++) {
                sq += (double) x[off + i] * x[off + i];
            }
            float inv = (float) (1.0 / Math.sqrt(sq / width + eps));
            for (int i = 0; i < width; i++) {
                x[off + i] = x[off + i] * inv * weight[i];
            }
        });
    }

    private static IntStream rows(int rows, int width) {
        IntStream s = IntStream.range(0, rows);
        return (long) rows * width > 1 << 16 ? s.parallel() : s;
    }
}
