package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.tensor.FloatTensor;

/** GPU conversions against the host's {@link DType} conversions, bit for bit, NaN for NaN. */
@Tag("gpu")
class ConvertKernelGpuTest {

    private static final int[] LENGTHS = {1, 7, 8, 9, 4097, 100_003};

    private static CudaContext context;
    private static ConvertKernel kernel;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        kernel = new ConvertKernel(KernelLibrary.of(context));
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    /** Gaussian values over a wide exponent range, plus the cases rounding gets wrong: ties, overflow, subnormals, NaN. */
    private static float[] nastyFloats(Random rnd, int n) {
        float[] special = {0f, -0f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MAX_VALUE,
                Float.MIN_VALUE, -Float.MIN_NORMAL, 65504f, 65519.99f, 65520f, -65536f, 5.9604645e-8f, 2.9802322e-8f,
                Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000), Float.intBitsToFloat(0x7F7F8000),
                Float.intBitsToFloat(0x7FC00001), Float.intBitsToFloat(0x00008000), 1f + 0x1p-11f, 1f + 0x3p-11f};
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            if (rnd.nextInt(8) == 0) {
                a[i] = special[rnd.nextInt(special.length)];
            } else if (rnd.nextInt(4) == 0) {
                a[i] = Float.intBitsToFloat(rnd.nextInt());
            } else {
                a[i] = (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(60) - 30));
            }
        }
        return a;
    }

    /** fp32 tensor of n elements starting {@code misalign} bytes past an aligned address. */
    private static DeviceTensor tensor(DeviceScope scope, DType dtype, int n, int misalign) {
        long bytes = (long) n * dtype.bytes();
        return new DeviceTensor(scope.allocate(bytes + 16).slice(misalign, bytes), new int[]{n}, dtype);
    }

    @Test
    void narrowsLikeTheHost() {
        Random rnd = new Random(23);
        for (DType target : new DType[]{DType.BF16, DType.F16}) {
            for (int n : LENGTHS) {
                for (int misalign : new int[]{0, 4}) {
                    float[] data = nastyFloats(rnd, n);
                    try (DeviceScope scope = context.openScope()) {
                        CudaStream stream = scope.createStream();
                        DeviceTensor src = tensor(scope, DType.F32, n, misalign);
                        DeviceTensor dst = tensor(scope, target, n, 0);
                        src.buffer().copyFromHost(data);
                        dst.buffer().fill((byte) 0xA5);
                        kernel.convert(src, dst, stream);
                        stream.synchronize();
                        short[] got = new short[n];
                        dst.buffer().copyToHost(got);
                        for (int i = 0; i < n; i++) {
                            short expected = target.encodeHalf(data[i]);
                            if (Float.isNaN(data[i])) {
                                assertTrue(Float.isNaN(target.decodeHalf(got[i])), target + " NaN at " + i);
                            } else if (expected != got[i]) {
                                fail(target + " n=" + n + " misalign=" + misalign + " element " + i + " (" + data[i]
                                        + "): expected 0x" + Integer.toHexString(expected & 0xFFFF) + " got 0x"
                                        + Integer.toHexString(got[i] & 0xFFFF));
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void widensExactly() {
        Random rnd = new Random(29);
        for (DType source : new DType[]{DType.BF16, DType.F16}) {
            for (int n : LENGTHS) {
                for (int misalign : new int[]{0, 2}) {
                    short[] bits = new short[n];
                    for (int i = 0; i < n; i++) {
                        bits[i] = (short) rnd.nextInt();
                    }
                    try (DeviceScope scope = context.openScope()) {
                        CudaStream stream = scope.createStream();
                        DeviceTensor src = tensor(scope, source, n, misalign);
                        DeviceTensor dst = tensor(scope, DType.F32, n, 0);
                        src.buffer().copyFromHost(bits);
                        dst.buffer().fill(0xA5A5A5A5);
                        kernel.convert(src, dst, stream);
                        stream.synchronize();
                        float[] got = new float[n];
                        dst.buffer().copyToHost(got);
                        for (int i = 0; i < n; i++) {
                            float expected = source.decodeHalf(bits[i]);
                            if (Float.isNaN(expected)) {
                                assertTrue(Float.isNaN(got[i]), source + " NaN at " + i);
                            } else {
                                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(got[i]),
                                        source + " n=" + n + " element " + i);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void uploadsAndDownloadsThroughTheDevice() {
        Random rnd = new Random(31);
        int[] shape = {2, 3, 101, 24};
        float[] data = new float[2 * 3 * 101 * 24];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) rnd.nextGaussian() * 3;
        }
        FloatTensor host = new FloatTensor(shape, data);
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            for (DType type : new DType[]{DType.BF16, DType.F16}) {
                DeviceTensor t = kernel.upload(scope, host, type, stream);
                assertEquals(type, t.dtype());
                assertArrayEquals(shape, t.shape());
                FloatTensor back = kernel.download(t, stream);
                assertArrayEquals(shape, back.shape());
                for (int i = 0; i < data.length; i++) {
                    assertEquals(type.decodeHalf(type.encodeHalf(data[i])), back.data()[i], type + " element " + i);
                }
            }
        }
    }

    @Test
    void rejectsConversionsItDoesNotDo() {
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor f32 = scope.allocateTensor(DType.F32, 4, 5);
            DeviceTensor f32b = scope.allocateTensor(DType.F32, 4, 5);
            DeviceTensor bf16 = scope.allocateTensor(DType.BF16, 4, 5);
            DeviceTensor f16 = scope.allocateTensor(DType.F16, 4, 5);
            DeviceTensor bf16Other = scope.allocateTensor(DType.BF16, 5, 4);
            assertThrows(IllegalArgumentException.class, () -> kernel.convert(f32, f32b, stream));
            assertThrows(IllegalArgumentException.class, () -> kernel.convert(bf16, f16, stream));
            assertThrows(IllegalArgumentException.class, () -> kernel.convert(f32, bf16Other, stream));
            assertThrows(IllegalArgumentException.class, () -> kernel.convert(f32, new DeviceTensor(
                    f32.buffer().slice(0, 40), new int[]{4, 5}, DType.BF16), stream), "overlapping");
        }
    }
}
