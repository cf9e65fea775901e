package tileattn.dit;

import java.util.stream.IntStream;
import tileattn.tensor.FloatTensor;

/**
 * A linear layer {@code y = x·Wᵀ + b}. The weight is held transposed, [in, out], so the matrix product runs along
 * contiguous output columns; {@link #weight()} gives it back in PyTorch's [out, in] layout.
 */
public record Linear(int in, int out, float[] weightT, float[] bias) {

    public Linear {
        if ((long) in * out != weightT.length || bias.length != out) {
            throw new IllegalArgumentException("linear " + in + "→" + out + " needs " + (long) in * out
                    + " weights and " + out + " biases, got " + weightT.length + " and " + bias.length);
        }
    }

    /**
     * From PyTorch tensors: weight [out, in...] (trailing dims flattened, as a Conv3d whose kernel equals its
     * stride is a linear layer over the flattened patch) and bias [out].
     */
    public static Linear fromPyTorch(FloatTensor weight, FloatTensor bias) {
        int out = weight.dim(0);
        int in = weight.size() / Math.max(1, out);
        return new Linear(in, out, transpose(weight.data(), out, in), bias.data());
    }

    /** The weight as PyTorch stores it, [out, in]. */
    public float[] weight() {
        return transpose(weightT, in, out);
    }

    public float[] apply(float[] x, int rows) {
        return Matmul.linear(x, rows, this);
    }

    private static final int BLOCK = 64;

    /** [rows, cols] → [cols, rows], in cache-sized blocks, in parallel over row blocks. */
    static float[] transpose(float[] src, int rows, int cols) {
        float[] dst = new float[src.length];
        IntStream.range(0, (rows + BLOCK - 1) / BLOCK).parallel().forEach(rb -> {
            int r1 = Math.min(rows, rb * BLOCK + BLOCK);
            for (int c0 = 0; c0 < cols; c0 += BLOCK) {
                int c1 = Math.min(cols, c0 + BLOCK);
                for (int r = rb * BLOCK; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        dst[c * rows + r] = src[r * cols + c];
                    }
                }
            }
        });
        return dst;
    }
}
