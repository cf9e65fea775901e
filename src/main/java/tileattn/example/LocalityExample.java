package tileattn.example;

import java.util.Random;
import tileattn.layout.Shape3;
import tileattn.tensor.FloatTensor;

/**
 * A deterministic attention input with real spatial-temporal locality, standing in for the activations of a video
 * DiT. Each channel of q and k is a smooth random field over the token grid, a cosine of a random low frequency
 * (random Fourier features), so q(x)·k(y) approximates a Gaussian kernel of the distance x−y: attention mass
 * concentrates on nearby tokens, as it does in trained video models, and STA/VSA errors against dense attention
 * are small and meaningful rather than the uniform error white noise gives. Heads get different correlation
 * lengths, so some heads look more locally than others. v is a smoother field of the same kind. A little
 * independent noise keeps q, k and v from being exactly smooth. Text tokens (after the video) carry
 * position-free random features.
 *
 * @param q raster order [batch, heads, S, d]
 * @param k raster order [batch, heads, S, d]
 * @param v raster order [batch, heads, S, d]
 */
public record LocalityExample(FloatTensor q, FloatTensor k, FloatTensor v) {

    /** Correlation length in tokens of head h's q/k fields; cycles so any head count gets a spread. */
    static double correlationLength(int head) {
        double[] lengths = {2.0, 3.5, 6.0};
        return lengths[head % lengths.length];
    }

    private static final double VALUE_LENGTH = 6.0;
    private static final double NOISE = 0.1;
    /** Feature amplitude; sets how peaked attention is (score at zero distance ≈ amplitude² · √d / 2). */
    private static final double AMPLITUDE = 1.8;

    public static LocalityExample generate(Shape3 video, int textLength, int batch, int heads, int headDim, long seed) {
        if (batch < 1 || heads < 1 || headDim < 1 || textLength < 0) {
            throw new IllegalArgumentException("batch, heads and head dim must be positive and text length >= 0, got "
                    + batch + ", " + heads + ", " + headDim + ", " + textLength);
        }
        int s = Math.addExact(video.volume(), textLength);
        FloatTensor q = FloatTensor.zeros(batch, heads, s, headDim);
        FloatTensor k = FloatTensor.zeros(batch, heads, s, headDim);
        FloatTensor v = FloatTensor.zeros(batch, heads, s, headDim);
        Random rnd = new Random(seed);
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                long offset = ((long) b * heads + h) * s * headDim;
                Field qk = Field.random(rnd, headDim, correlationLength(h));
                Field values = Field.random(rnd, headDim, VALUE_LENGTH);
                fill(q.data(), offset, qk, video, textLength, rnd);
                fill(k.data(), offset, qk, video, textLength, rnd);
                fill(v.data(), offset, values, video, textLength, rnd);
            }
        }
        return new LocalityExample(q, k, v);
    }

    private static void fill(float[] out, long offset, Field field, Shape3 video, int textLength, Random rnd) {
        int d = field.channels();
        int pos = (int) offset;
        for (int t = 0; t < video.t(); t++) {
            for (int y = 0; y < video.h(); y++) {
                for (int x = 0; x < video.w(); x++) {
                    for (int c = 0; c < d; c++) {
                        out[pos++] = (float) (field.at(c, t, y, x) + NOISE * rnd.nextGaussian());
                    }
                }
            }
        }
        for (int i = 0; i < textLength; i++) {
            for (int c = 0; c < d; c++) {
                out[pos++] = (float) (AMPLITUDE * Math.sqrt(0.5) * rnd.nextGaussian());
            }
        }
    }

    /** Per channel c: AMPLITUDE · cos(ω_c · (t, y, x) + φ_c) with ω_c ~ N(0, 1/length²) per axis. */
    private record Field(double[] omega, double[] phase) {

        static Field random(Random rnd, int channels, double length) {
            double[] omega = new double[channels * 3];
            double[] phase = new double[channels];
            for (int c = 0; c < channels; c++) {
                for (int a = 0; a < 3; a++) {
                    omega[c * 3 + a] = rnd.nextGaussian() / length;
                }
                phase[c] = rnd.nextDouble() * 2 * Math.PI;
            }
            return new Field(omega, phase);
        }

        int channels() {
            return phase.length;
        }

        double at(int c, int t, int y, int x) {
            return AMPLITUDE * Math.cos(omega[c * 3] * t + omega[c * 3 + 1] * y + omega[c * 3 + 2] * x + phase[c]);
        }
    }
}
