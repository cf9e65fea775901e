package tileattn.tensor;

import java.util.Arrays;

/**
 * One tensor's entry in a safetensors header. Offsets are bytes relative to the start of the data section.
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

    public TensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long elementCount() {
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        return n;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
