package tileattn.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import tileattn.tensor.FloatTensor;

/** Random inputs and error measures shared by the CPU attention tests. */
final class Tensors {

    private Tensors() {
    }

    static FloatTensor gaussian(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    /** ||actual − expected|| / ||expected|| in double. */
    static double relativeL2(FloatTensor actual, FloatTensor expected) {
        if (!actual.sameShape(expected)) {
            fail("shape " + actual.shapeString() + " vs expected " + expected.shapeString());
        }
        double diff = 0, norm = 0;
        float[] a = actual.data(), b = expected.data();
        for (int i = 0; i < a.length; i++) {
            double e = (double) a[i] - b[i];
            diff += e * e;
            norm += (double) b[i] * b[i];
        }
        return Math.sqrt(diff / norm);
    }

    static void assertClose(FloatTensor actual, FloatTensor expected, double tolerance, String what) {
        for (float x : actual.data()) {
            if (!Float.isFinite(x)) {
                fail(what + ": output holds " + x);
            }
        }
        double err = relativeL2(actual, expected);
        assertTrue(err < tolerance, what + ": relative L2 error " + err + " >= " + tolerance);
    }
}
