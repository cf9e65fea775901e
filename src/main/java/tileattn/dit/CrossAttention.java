package tileattn.dit;

import java.util.stream.IntStream;

/**
 * Dense attention of the video tokens over the text tokens, on token-major rows: q [B·S, dim], k and v [B·L, dim],
 * heads side by side within a row. Per batch entry and head the scores and the weighted values are two matrix
 * products; the softmax uses {@link StrictMath#exp} so the result does not depend on which JIT tier runs it.
 */
final class CrossAttention {

    private CrossAttention() {
    }

    static float[] attend(float[] q, int batch, int s, float[] k, float[] v, int l, int heads, int d) {
        int dim = heads * d;
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] out = new float[q.length];
        IntStream planes = IntStream.range(0, batch * heads);
        if ((long) batch * s * l * dim > 1 << 16) {
            planes = planes.parallel();
        }
        planes.forEach(plane -> {
            int b = plane / heads, h = plane % heads;
            float[] qh = new float[s * d], khT = new float[d * l], vh = new float[l * d];
            for (int i = 0; i < s; i++) {
                System.arraycopy(q, (b * s + i) * dim + h * d, qh, i * d, d);
            }
            for (int j = 0; j < l; j++) {
                int row = (b * l + j) * dim + h * d;
                for (int dd = 0; dd < d; dd++) {
                    khT[dd * l + j] = k[row + dd];
                }
                System.arraycopy(v, row, vh, j * d, d);
            }
            float[] p = Matmul.multiply(qh, s, d, khT, l, null);
            for (int i = 0; i < s; i++) {
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < l; j++) {
                    max = Math.max(max, p[i * l + j]);
                }
                double sum = 0;
                for (int j = 0; j < l; j++) {
                    float e = (float) StrictMath.exp((p[i * l + j] - max) * scale);
                    p[i * l + j] = e;
                    sum += e;
                }
                float inv = (float) (1.0 / sum);
                for (int j = 0; j < l; j++) {
                    p[i * l + j] *= inv;
                }
            }
            float[] o = Matmul.multiply(p, s, l, vh, d, null);
            for (int i = 0; i < s; i++) {
                System.arraycopy(o, i * d, out, (b * s + i) * dim + h * d, d);
            }
        });
        return out;
    }
}
