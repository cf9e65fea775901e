package tileattn.cuda;

import tileattn.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import tileattn.tensor.FloatTensor;

/**
 * A dense row-major tensor in device memory: a {@link DeviceBuffer} (owned by its {@link DeviceScope}), a shape
 * and an element type. Attention tensors are [B, heads, S, d].
 */
public final class DeviceTensor {

    private final DeviceBuffer buffer;
    private final int[] shape;
    private final DType dtype;

    public DeviceTensor(DeviceBuffer buffer, int[] shape, DType dtype) {
        this.shape = shape.clone();
        long expected = Math.multiplyExact(elementCount(this.shape), (long) dtype.bytes());
        if (buffer.bytes() != expected) {
            throw new IllegalArgumentException("a " + dtype + " tensor of shape " + Arrays.toString(shape) + " needs "
                    + expected + " bytes, the buffer has " + buffer.bytes());
        }
        if (buffer.address() % dtype.bytes() != 0) {
            throw new IllegalArgumentException("a " + dtype + " tensor needs " + dtype.bytes() + "-byte aligned memory");
        }
        this.buffer = buffer;
        this.dtype = dtype;
    }

    static long elementCount(int[] shape) {
        long n = 1;
        for (int s : shape) {
            if (s < 0) {
                throw new IllegalArgumentException("negative extent in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, (long) s);
        }
        return n;
    }

    /**
     * Copies a host tensor to the device as {@code dtype}, converting on the host (round to nearest even) so that
     * only the narrow data crosses the bus.
     */
    public static DeviceTensor upload(DeviceScope scope, FloatTensor host, DType dtype) {
        DeviceTensor tensor = scope.allocateTensor(dtype, host.shape());
        float[] data = host.data();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(Math.max(1, tensor.bytes()), 16).asSlice(0, tensor.bytes());
            for (int i = 0; i < data.length; i++) {
                dtype.store(staging, i, data[i]);
            }
            tensor.buffer.copyFromHost(staging);
        }
        return tensor;
    }

    /** Copies the tensor to the host as fp32 (exact for every element type); waits for the copy. */
    public FloatTensor download() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor of shape " + shapeString() + " is too large for a FloatTensor");
        }
        float[] data = new float[(int) n];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(Math.max(1, bytes()), 16).asSlice(0, bytes());
            buffer.copyToHost(staging);
            for (int i = 0; i < data.length; i++) {
                data[i] = dtype.load(staging, i);
            }
        }
        return new FloatTensor(shape, data);
    }

    public DeviceBuffer buffer() {
        return buffer;
    }

    public DType dtype() {
        return dtype;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int axis) {
        return shape[axis];
    }

    public long elementCount() {
        return elementCount(shape);
    }

    public long bytes() {
        return buffer.bytes();
    }

    public boolean sameShape(DeviceTensor other) {
        return Arrays.equals(shape, other.shape);
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public String toString() {
        return "DeviceTensor[" + dtype + " " + shapeString() + " at " + buffer + "]";
    }
}
