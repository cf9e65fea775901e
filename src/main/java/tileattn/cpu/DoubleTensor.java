package tileattn.cpu;

import java.util.Arrays;
import tileattn.tensor.FloatTensor;

/**
 * A dense row-major double tensor for the literal references, where finite-difference checks need more
 * precision than fp32 gives.
 */
public record DoubleTensor(int[] shape, double[] data) {

    public DoubleTensor {
        shape = shape.clone();
        long n = 1;
        for (int s : shape) {
            if (s < 0) {
                throw new IllegalArgumentException("negative extent in shape " + Arrays.toString(shape));
            }
            n *= s;
        }
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n
                    + " elements but the data has " + data.length);
        }
    }

    public static DoubleTensor zeros(int... shape) {
        long n = 1;
        for (int s : shape) {
            n *= s;
        }
        return new DoubleTensor(shape, new double[Math.toIntExact(n)]);
    }

    public static DoubleTensor of(FloatTensor t) {
        double[] d = new double[t.size()];
        float[] f = t.data();
        for (int i = 0; i < d.length; i++) {
            d[i] = f[i];
        }
        return new DoubleTensor(t.shape(), d);
    }

    /** Rounds to fp32. */
    public FloatTensor toFloat() {
        float[] f = new float[data.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) data[i];
        }
        return new FloatTensor(shape, f);
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    public int dim(int axis) {
        return shape[axis];
    }

    public int size() {
        return data.length;
    }

    public boolean sameShape(DoubleTensor other) {
        return Arrays.equals(shape, other.shape);
    }

    public DoubleTensor copy() {
        return new DoubleTensor(shape, data.clone());
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
