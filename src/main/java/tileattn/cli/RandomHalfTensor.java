package tileattn.cli;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.LongStream;
import tileattn.tensor.DType;

/**
 * A [B, heads, S, d] tensor of bf16 or fp16 values in native host memory, filled with uniform random values in
 * [low, high) from a counter-based hash of (seed, index): the same tensor for the same seed on any number of threads,
 * generated in parallel so that the GPU benchmark's inputs of a billion elements take a fraction of a second.
 */
final class RandomHalfTensor {

    private static final long CHUNK = 1 << 20;

    private final int[] shape;
    private final DType dtype;
    private final MemorySegment data;

    private RandomHalfTensor(int[] shape, DType dtype, MemorySegment data) {
        this.shape = shape.clone();
        this.dtype = dtype;
        this.data = data;
    }

    /** @param arena a shared arena: the values are written, and later read, by several threads */
    static RandomHalfTensor generate(Arena arena, DType dtype, int[] shape, long seed, float low, float high) {
        if (dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("random half tensors are BF16 or F16, not " + dtype);
        }
        long n = 1;
        for (int s : shape) {
            n = Math.multiplyExact(n, (long) s);
        }
        MemorySegment data = arena.allocate(2 * n, 16);
        long count = n;
        LongStream.range(0, (n + CHUNK - 1) / CHUNK).parallel().forEach(chunk -> {
            long end = Math.min(count, (chunk + 1) * CHUNK);
            for (long i = chunk * CHUNK; i < end; i++) {
                float u = (mix(seed * 0x9E3779B97F4A7C15L + i) >>> 40) * 0x1.0p-24f;
                data.setAtIndex(ValueLayout.JAVA_SHORT, i, dtype.encodeHalf(low + (high - low) * u));
            }
        });
        return new RandomHalfTensor(shape, dtype, data);
    }

    /** splitmix64's finaliser: consecutive inputs give independent-looking outputs. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    int[] shape() {
        return shape.clone();
    }

    int dim(int axis) {
        return shape[axis];
    }

    DType dtype() {
        return dtype;
    }

    MemorySegment data() {
        return data;
    }

    /** Element [b, h, s, c] as fp32. */
    float get(int b, int h, int s, int c) {
        long index = (((long) b * shape[1] + h) * shape[2] + s) * shape[3] + c;
        return dtype.decodeHalf(data.getAtIndex(ValueLayout.JAVA_SHORT, index));
    }
}
