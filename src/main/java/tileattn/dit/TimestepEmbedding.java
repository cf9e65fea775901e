package tileattn.dit;

/**
 * Wan's sinusoidal timestep embedding: for half = width/2 frequencies f_i = 10000^(−i/half), the vector
 * [cos(t·f_0) … cos(t·f_{half−1}), sin(t·f_0) … sin(t·f_{half−1})] (cosines first).
 */
final class TimestepEmbedding {

    private TimestepEmbedding() {
    }

    static float[] sinusoid(double t, int width) {
        int half = width / 2;
        float[] e = new float[width];
        for (int i = 0; i < half; i++) {
            double angle = t * StrictMath.pow(10000.0, -(double) i / half);
            e[i] = (float) StrictMath.cos(angle);
            e[half + i] = (float) StrictMath.sin(angle);
        }
        return e;
    }
}
