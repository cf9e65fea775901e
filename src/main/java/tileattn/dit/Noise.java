package tileattn.dit;

import java.util.SplittableRandom;
import java.util.stream.IntStream;
import tileattn.tensor.FloatTensor;

/** Seeded standard-normal tensors, filled in fixed chunks so the values do not depend on thread scheduling. */
public final class Noise {

    private static final int CHUNK = 1 << 16;

    private Noise() {
    }

    public static FloatTensor gaussian(long seed, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        IntStream.range(0, (data.length + CHUNK - 1) / CHUNK).parallel().forEach(chunk -> {
            SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 0xD1B54A32D192ED03L * (chunk + 1));
            int end = Math.min(data.length, (chunk + 1) * CHUNK);
            for (int i = chunk * CHUNK; i < end; i++) {
                data[i] = (float) rnd.nextGaussian();
            }
        });
        return t;
    }
}
