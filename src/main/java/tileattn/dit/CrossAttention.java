package tileattn.dit;

import java.util.stream.IntStream;
import tileattn.cpu.VectorOps;
import tileattn.cpu.VectorOpsProvider;

/**
 * Dense attention of the video tokens over the text tokens, on token-major rows: q [B·S, dim], k and v [B·L, dim],
 * heads side by side within a row. The text is short (512 tokens), so each query row is handled whole: scores,
 * softmax and the weighted sum of values, head by head.
 */
final class CrossAttention {

    private CrossAttention() {
    }

    static float[] attend(float[] q, int batch, int s, float[] k, float[] v, int l, int heads, int d) {
        VectorOps ops = VectorOpsProvider.get();
        int dim = heads * d;
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] out = new float[q.length];
        IntStream rows = IntStream.range(0, batch * s);
        if ((long) batch * s * l * dim > 1 << 16) {
            rows = rows.parallel();
        }
        rows.forEach(row -> {
            int b = row / s;
            float[] p = new float[l];
            for (int h = 0; h < heads; h++) {
                int qOff = row * dim + h * d;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < l; j++) {
                    p[j] = ops.dot(q, qOff, k, (b * l + j) * dim + h * d, d) * scale;
                    max = Math.max(max, p[j]);
                }
                float sum = 0;
                for (int j = 0; j < l; j++) {
                    p[j] = (float) Math.exp(p[j] - max);
                    sum += p[j];
                }
                for (int j = 0; j < l; j++) {
                    ops.axpy(p[j] / sum, v, (b * l + j) * dim + h * d, out, qOff, d);
                }
            }
        });
        return out;
    }
}
