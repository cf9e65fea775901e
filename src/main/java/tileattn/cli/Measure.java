package tileattn.cli;

import java.util.Arrays;
import java.util.function.Supplier;
import tileattn.tensor.FloatTensor;

/** Timing and accuracy measures shared by demo and bench. */
final class Measure {

    private Measure() {
    }

    /** A result and the wall time of the call that produced it. */
    record Timed<T>(T value, double millis) {
    }

    static <T> Timed<T> time(Supplier<T> work) {
        long t0 = System.nanoTime();
        T value = work.get();
        return new Timed<>(value, (System.nanoTime() - t0) / 1e6);
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /** ||actual − expected||₂ / ||expected||₂ in double precision. */
    static double relativeL2(FloatTensor actual, FloatTensor expected) {
        if (!actual.sameShape(expected)) {
            throw new IllegalArgumentException("cannot compare shapes " + actual.shapeString() + " and "
                    + expected.shapeString());
        }
        double diff = 0, norm = 0;
        float[] a = actual.data(), e = expected.data();
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - e[i];
            diff += d * d;
            norm += (double) e[i] * e[i];
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /** Forward FLOPs of attention: 2 matmuls of 2 FLOPs per multiply-add, 4 · heads · S · attended keys · d. */
    static double flops(int batchHeads, long queries, double attendedPerQuery, int headDim) {
        return 4.0 * batchHeads * queries * attendedPerQuery * headDim;
    }
}
