package tileattn.dit;

import java.util.stream.IntStream;

/**
 * Adaptive-norm modulation on token rows [B·S, dim]. A modulation is [B, chunks, dim]: a learned table [chunks,
 * dim] plus a per-batch-entry time signal; each chunk is a shift, a scale or a gate over the hidden width.
 */
final class Modulation {

    private Modulation() {
    }

    /** table [chunks·dim] + signal [B, chunks·dim] → [B, chunks·dim]. */
    static float[] perBatch(float[] table, float[] signal, int batch) {
        int width = table.length;
        if (signal.length != batch * width) {
            throw new IllegalArgumentException("modulation table of " + width + " values against a signal of "
                    + signal.length + " for batch " + batch);
        }
        float[] m = new float[batch * width];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < width; i++) {
                m[b * width + i] = table[i] + signal[b * width + i];
            }
        }
        return m;
    }

    /** [B, dim] → [B, chunks, dim], each chunk a copy: the head adds the same time embedding to shift and scale. */
    static float[] repeatChunks(float[] x, int batch, int chunks) {
        int dim = x.length / batch;
        float[] out = new float[batch * chunks * dim];
        for (int b = 0; b < batch; b++) {
            for (int c = 0; c < chunks; c++) {
                System.arraycopy(x, b * dim, out, (b * chunks + c) * dim, dim);
            }
        }
        return out;
    }

    /** h = h·(1 + scale) + shift for each row, with the chunks of the row's batch entry. */
    static void modulate(float[] h, int batch, int s, int dim, float[] mod, int chunks, int shift, int scale) {
        IntStream.range(0, batch * s).parallel().forEach(row -> {
            int base = (row / s) * chunks * dim;
            int sh = base + shift * dim, sc = base + scale * dim, off = row * dim;
            for (int j = 0; j < dim; j++) {
                h[off + j] = h[off + j] * (1 + mod[sc + j]) + mod[sh + j];
            }
        });
    }

    /** x += y · gate for each row, with the gate chunk of the row's batch entry. */
    static void addGated(float[] x, float[] y, int batch, int s, int dim, float[] mod, int chunks, int gate) {
        IntStream.range(0, batch * s).parallel().forEach(row -> {
            int off = row * dim, g = (row / s) * chunks * dim + gate * dim;
            for (int j = 0; j < dim; j++) {
                x[off + j] += y[off + j] * mod[g + j];
            }
        });
    }

    static void add(float[] x, float[] y) {
        IntStream.range(0, (x.length + 4095) / 4096).parallel().forEach(chunk -> {
            int end = Math.min(x.length, chunk * 4096 + 4096);
            for (int i = chunk * 4096; i < end; i++) {
                x[i] += y[i];
            }
        });
    }
}
