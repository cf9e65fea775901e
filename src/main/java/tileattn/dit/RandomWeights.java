package tileattn.dit;

import java.util.SplittableRandom;
import java.util.stream.IntStream;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.ReducedPrecision;

/**
 * Seeded random parameters of a Wan model's exact shapes, for latency work and tests. Values are uniform with a
 * standard deviation chosen so activations keep their scale through the blocks: 1/√fan-in for weights (the
 * patch embedding's fan-in is its channels × patch volume), 0.02 for biases, 1/√dim for the modulation tables
 * (Wan's own initialisation), and 1 ± 0.05 for norm weights. Each tensor is filled in fixed chunks, each from its
 * own generator seeded by (seed, name, chunk), so the result does not depend on thread scheduling.
 */
public final class RandomWeights {

    private static final int CHUNK = 1 << 16;
    private static final double SQRT3 = Math.sqrt(3.0);

    private RandomWeights() {
    }

    public static WanWeights create(WanConfig config, long seed) {
        HeapCheck.require(HeapCheck.modelBytes(config), config.name());
        return WanWeights.from(config, (name, shape) -> tensor(config, name, shape, seed));
    }

    /**
     * The same values rounded to bf16, which the GPU model stores: a CPU model of these weights computes with exactly
     * what the GPU model holds, so the two can be compared.
     */
    public static WanWeights createBf16Exact(WanConfig config, long seed) {
        HeapCheck.require(HeapCheck.modelBytes(config), config.name());
        return WanWeights.from(config, (name, shape) -> {
            FloatTensor t = tensor(config, name, shape, seed);
            float[] d = t.data();
            for (int i = 0; i < d.length; i++) {
                d[i] = ReducedPrecision.fromBf16(ReducedPrecision.toBf16(d[i]));
            }
            return t;
        });
    }

    static FloatTensor tensor(WanConfig config, String name, int[] shape, long seed) {
        FloatTensor t = FloatTensor.zeros(shape);
        double mean = isNormWeight(name) ? 1.0 : 0.0;
        double std = std(config, name, shape);
        fillUniform(t.data(), mean, std, seed, name);
        return t;
    }

    private static boolean isNormWeight(String name) {
        return name.endsWith("norm_q.weight") || name.endsWith("norm_k.weight") || name.endsWith("norm2.weight");
    }

    private static double std(WanConfig config, String name, int[] shape) {
        if (isNormWeight(name)) {
            return 0.05;
        }
        if (name.endsWith("scale_shift_table")) {
            return 1.0 / Math.sqrt(config.dim());
        }
        if (name.endsWith(".weight") && shape.length >= 2) {
            long fanIn = 1;
            for (int a = 1; a < shape.length; a++) {
                fanIn *= shape[a];
            }
            return 1.0 / Math.sqrt(fanIn);
        }
        return 0.02;
    }

    /** Uniform values of the given mean and standard deviation. */
    static void fillUniform(float[] data, double mean, double std, long seed, String name) {
        double halfWidth = std * SQRT3;
        long nameSeed = seed * 0x9E3779B97F4A7C15L ^ name.hashCode();
        IntStream.range(0, (data.length + CHUNK - 1) / CHUNK).parallel().forEach(chunk -> {
            SplittableRandom rnd = new SplittableRandom(nameSeed + 0xBF58476D1CE4E5B9L * (chunk + 1));
            int end = Math.min(data.length, (chunk + 1) * CHUNK);
            for (int i = chunk * CHUNK; i < end; i++) {
                data[i] = (float) (mean + halfWidth * (2 * rnd.nextDouble() - 1));
            }
        });
    }
}
