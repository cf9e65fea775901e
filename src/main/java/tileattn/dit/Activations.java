package tileattn.dit;

import java.util.stream.IntStream;

/**
 * Elementwise activations. {@link StrictMath} keeps the results bit-identical whichever JIT tier runs them (the
 * intrinsics behind {@link Math#tanh} and {@link Math#exp} may differ from the interpreter in the last bit).
 */
final class Activations {

    private static final double SQRT_2_OVER_PI = Math.sqrt(2.0 / Math.PI);

    private Activations() {
    }

    /** GELU with the tanh approximation (PyTorch's approximate='tanh'). */
    static void geluTanh(float[] x) {
        IntStream.range(0, (x.length + 4095) / 4096).parallel().forEach(chunk -> {
            int end = Math.min(x.length, chunk * 4096 + 4096);
            for (int i = chunk * 4096; i < end; i++) {
                x[i] = geluTanh(x[i]);
            }
        });
    }

    static float geluTanh(float v) {
        double u = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
        return (float) (0.5 * v * (1.0 + StrictMath.tanh(u)));
    }

    /** SiLU, x·sigmoid(x). */
    static float[] silu(float[] x) {
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) (x[i] / (1.0 + StrictMath.exp(-x[i])));
        }
        return y;
    }
}
