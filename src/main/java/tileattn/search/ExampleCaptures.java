package tileattn.search;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import tileattn.layout.Shape3;
import tileattn.tensor.FloatTensor;

/**
 * The built-in example for {@code tileattn search} without captured inputs: synthetic q, k, v whose heads have
 * different spatial-temporal locality, so that the search picks different windows for them. Head kinds cycle
 * through: local in all three dimensions, whole time with local space, one frame with the whole picture, whole
 * time and width in a narrow band of rows, the same for columns, and global. Layers shift the cycle and sharpen
 * the scores; later steps are sharper than early ones, as denoising makes attention more local.
 *
 * <p>Locality comes from random Fourier features: φ(p) = [cos(ωⱼ·p), sin(ωⱼ·p)]/√m with ωⱼ drawn with spread
 * 1/ℓ per dimension, so φ(p)·φ(p′) ≈ exp(−Σ (Δ/ℓ)²/2); q = β·√d·φ(p) + noise and k = φ(p) + noise give
 * scores β·that kernel under the 1/√d scale. An infinite ℓ makes a dimension flat (the head attends all of it).
 */
public final class ExampleCaptures {

    private static final double INF = Double.POSITIVE_INFINITY;

    /** Length scales in tokens (t, h, w) and a sharpness factor of each head kind. */
    private static final double[][] KINDS = {
            {0.6, 1.2, 1.2, 1.0},   // local
            {INF, 1.2, 1.2, 1.0},   // whole time, local space
            {0.35, INF, INF, 1.0},  // one frame, whole picture
            {INF, 0.6, INF, 1.0},   // band of rows
            {INF, INF, 0.6, 1.0},   // band of columns
            {1.0, 2.0, 2.0, 0.15},  // nearly uniform: needs the full window
    };

    private static final String[] KIND_NAMES = {"local", "temporal", "frame", "rows", "columns", "global"};

    private ExampleCaptures() {
    }

    /** The default example: video 5×12×20 (tile grid 5×6×10 under tiles of 1×2×2), 8 text tokens. */
    public static CaptureSet standard() {
        return create(new Shape3(5, 12, 20), 8, 2, 4, 6, 32, 20251123L);
    }

    public static CaptureSet create(Shape3 video, int textLength, int steps, int layers, int heads, int headDim, long seed) {
        if (headDim < 2 || headDim % 2 != 0) {
            throw new IllegalArgumentException("the example needs an even head dim >= 2, got " + headDim);
        }
        if (steps < 1 || layers < 1 || heads < 1) {
            throw new IllegalArgumentException("the example needs at least one step, layer and head");
        }
        List<Capture> captures = new ArrayList<>();
        for (int s = 0; s < steps; s++) {
            for (int l = 0; l < layers; l++) {
                captures.add(new Synthetic(video, textLength, s, steps, l, heads, headDim, seed));
            }
        }
        return new CaptureSet(video, textLength, 1, heads, headDim, captures,
                "built-in example (" + steps + " steps, " + layers + " layers, " + heads + " heads, d=" + headDim + ")");
    }

    /** The kind of a head in a layer, e.g. "temporal" (for the report of the example). */
    public static String kindOf(int layer, int head) {
        return KIND_NAMES[(head + layer) % KINDS.length];
    }

    private record Synthetic(Shape3 video, int text, int step, int steps, int layer, int heads, int d, long seed)
            implements Capture {

        @Override
        public String name() {
            return "example step " + step + " layer " + layer;
        }

        @Override
        public Qkv load() {
            int n = video.volume(), s = n + text, m = d / 2;
            float[] q = new float[heads * s * d], k = new float[q.length], v = new float[q.length];
            SplittableRandom rnd = new SplittableRandom(seed ^ (1_000_003L * step + 7919L * layer));
            double stepSharpness = 0.7 + 0.3 * (step + 1) / steps;
            double layerSharpness = 6 + 3 * (layer % 4);
            for (int h = 0; h < heads; h++) {
                double[] kind = KINDS[(h + layer) % KINDS.length];
                double beta = layerSharpness * stepSharpness * kind[3];
                double[][] omega = new double[m][3];
                for (int j = 0; j < m; j++) {
                    for (int a = 0; a < 3; a++) {
                        omega[j][a] = Double.isInfinite(kind[a]) ? 0 : rnd.nextGaussian() / kind[a];
                    }
                }
                double qScale = beta * Math.sqrt(d) / Math.sqrt(m), kScale = 1 / Math.sqrt(m);
                int base = h * s * d;
                for (int t = 0; t < video.t(); t++) {
                    for (int y = 0; y < video.h(); y++) {
                        for (int x = 0; x < video.w(); x++) {
                            int row = base + ((t * video.h() + y) * video.w() + x) * d;
                            for (int j = 0; j < m; j++) {
                                double phase = omega[j][0] * t + omega[j][1] * y + omega[j][2] * x;
                                double c = Math.cos(phase), sn = Math.sin(phase);
                                q[row + 2 * j] = (float) (qScale * c + 0.3 * rnd.nextGaussian());
                                q[row + 2 * j + 1] = (float) (qScale * sn + 0.3 * rnd.nextGaussian());
                                k[row + 2 * j] = (float) (kScale * c + 0.05 * rnd.nextGaussian());
                                k[row + 2 * j + 1] = (float) (kScale * sn + 0.05 * rnd.nextGaussian());
                            }
                        }
                    }
                }
                for (int i = base + n * d; i < base + s * d; i++) {
                    q[i] = (float) (0.5 * rnd.nextGaussian());
                    k[i] = (float) (0.5 * rnd.nextGaussian());
                }
                for (int i = base; i < base + s * d; i++) {
                    v[i] = (float) rnd.nextGaussian();
                }
            }
            int[] shape = {1, heads, s, d};
            return new Qkv(new FloatTensor(shape, q), new FloatTensor(shape, k), new FloatTensor(shape, v));
        }

        private static double gaussian(SplittableRandom rnd) {
            return rnd.nextGaussian();
        }
    }
}
