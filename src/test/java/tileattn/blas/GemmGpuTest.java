package tileattn.blas;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.ReducedPrecision;

/** cuBLASLt products against a double-precision host product of the same bf16-rounded operands. */
@Tag("gpu")
class GemmGpuTest {

    private static CudaContext context;
    private static Gemm gemm;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        gemm = Gemm.open(context);
        System.out.println("gemm: " + gemm.describe());
    }

    @AfterAll
    static void close() {
        if (gemm != null) {
            gemm.close();
        }
        if (context != null) {
            context.close();
        }
    }

    private static float[] bf16Random(Random rnd, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = ReducedPrecision.fromBf16(ReducedPrecision.toBf16((float) (rnd.nextGaussian() * scale)));
        }
        return a;
    }

    private static double geluTanh(double v) {
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    }

    private void check(int m, int n, int k, Gemm.Epilogue epilogue, DType out, long seed) {
        Random rnd = new Random(seed);
        float[] x = bf16Random(rnd, m * k, 1), w = bf16Random(rnd, n * k, 1 / Math.sqrt(k));
        float[] b = epilogue == Gemm.Epilogue.NONE ? null : bf16Random(rnd, n, 0.5);
        double[] want = new double[m * n];
        double norm = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = b == null ? 0 : b[j];
                for (int p = 0; p < k; p++) {
                    s += (double) x[i * k + p] * w[j * k + p];
                }
                want[i * n + j] = epilogue == Gemm.Epilogue.GELU_BIAS ? geluTanh(s) : s;
                norm += want[i * n + j] * want[i * n + j];
            }
        }
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor dx = DeviceTensor.upload(scope, new FloatTensor(new int[]{m, k}, x), DType.BF16);
            DeviceTensor dw = DeviceTensor.upload(scope, new FloatTensor(new int[]{n, k}, w), DType.BF16);
            DeviceTensor db = b == null ? null : DeviceTensor.upload(scope, new FloatTensor(new int[]{n}, b), out);
            DeviceTensor dy = scope.allocateTensor(out, m, n);
            dy.buffer().fill((byte) 0x7F);   // NaN-like poison in both types
            gemm.linear(dx, dw, db, dy, epilogue, stream);
            stream.synchronize();
            float[] got = dy.download().data();
            double err = 0;
            for (int i = 0; i < got.length; i++) {
                assertTrue(Float.isFinite(got[i]), "non-finite output at " + i + " for " + m + "x" + n + "x" + k);
                err += (got[i] - want[i]) * (got[i] - want[i]);
            }
            double rel = Math.sqrt(err / Math.max(norm, 1e-30));
            assertTrue(rel < (out == DType.F32 ? 1e-5 : 6e-3), m + "x" + n + "x" + k + " " + epilogue + " " + out
                    + ": relative L2 error " + rel);
        }
    }

    @Test
    void oddShapesMatchTheHostProduct() {
        int[][] shapes = {{1, 1, 1}, {3, 5, 7}, {37, 19, 53}, {129, 67, 99}, {200, 130, 64}};
        long seed = 1;
        for (int[] s : shapes) {
            for (DType out : new DType[]{DType.BF16, DType.F32}) {
                check(s[0], s[1], s[2], Gemm.Epilogue.NONE, out, seed++);
                check(s[0], s[1], s[2], Gemm.Epilogue.BIAS, out, seed++);
            }
        }
    }

    /**
     * In fp32 the tolerance (1e-5 relative L2) is 20 times below the distance between the tanh and the erf GELU
     * (about 2e-4 on unit Gaussian inputs), so this also tells which form the epilogue computes; the GPU model relies
     * on it being the tanh form.
     */
    @Test
    void geluEpilogueIsTheTanhGelu() {
        check(96, 80, 72, Gemm.Epilogue.GELU_BIAS, DType.F32, 99);
        check(65, 33, 17, Gemm.Epilogue.GELU_BIAS, DType.BF16, 98);
    }

    /** Large enough to be tuned: every candidate runs once on the operands, and the product is still right. */
    @Test
    void modelSizedProductKeepsItsPlan() {
        assertTrue(512L * 384 * 256 >= Gemm.TUNE_MIN_MACS);
        check(512, 384, 256, Gemm.Epilogue.BIAS, DType.BF16, 7);
        check(512, 384, 256, Gemm.Epilogue.GELU_BIAS, DType.F32, 9);
        int before = gemm.plannedShapes();
        check(512, 384, 256, Gemm.Epilogue.BIAS, DType.BF16, 8);
        assertEquals(before, gemm.plannedShapes(), "the same shape and alignment reuse the planned algorithm");
    }

    @Test
    void badShapesAreNamed() {
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor x = scope.allocateTensor(DType.BF16, 4, 8);
            DeviceTensor w = scope.allocateTensor(DType.BF16, 6, 9);
            DeviceTensor y = scope.allocateTensor(DType.BF16, 4, 6);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> gemm.linear(x, w, null, y, Gemm.Epilogue.NONE, stream));
            assertTrue(e.getMessage().contains("expects k = 9"), e.getMessage());
            DeviceTensor w2 = scope.allocateTensor(DType.BF16, 6, 8);
            e = assertThrows(IllegalArgumentException.class, () -> gemm.linear(x, w2, null, y, Gemm.Epilogue.BIAS, stream));
            assertTrue(e.getMessage().contains("needs a bias [6]"), e.getMessage());
            DeviceTensor f32 = scope.allocateTensor(DType.F32, 4, 8);
            e = assertThrows(IllegalArgumentException.class, () -> gemm.linear(f32, w2, null, y, Gemm.Epilogue.NONE, stream));
            assertTrue(e.getMessage().contains("BF16 x and w"), e.getMessage());
        }
    }

    /** y += x · wᵀ + bias in place, against the host, y starting from random values. */
    private void checkAccumulate(int m, int n, int k, boolean withBias, DType out, long seed) {
        Random rnd = new Random(seed);
        float[] x = bf16Random(rnd, m * k, 1), w = bf16Random(rnd, n * k, 1 / Math.sqrt(k));
        float[] y0 = bf16Random(rnd, m * n, 1), bias = withBias ? bf16Random(rnd, n, 0.5) : null;
        double[] want = new double[m * n];
        double norm = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = y0[i * n + j] + (bias == null ? 0 : bias[j]);
                for (int p = 0; p < k; p++) {
                    s += (double) x[i * k + p] * w[j * k + p];
                }
                want[i * n + j] = s;
                norm += s * s;
            }
        }
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor dx = DeviceTensor.upload(scope, new FloatTensor(new int[]{m, k}, x), DType.BF16);
            DeviceTensor dw = DeviceTensor.upload(scope, new FloatTensor(new int[]{n, k}, w), DType.BF16);
            DeviceTensor dy = DeviceTensor.upload(scope, new FloatTensor(new int[]{m, n}, y0), out);
            DeviceTensor db = bias == null ? null : DeviceTensor.upload(scope, new FloatTensor(new int[]{n}, bias), out);
            gemm.accumulate(dx, dw, db, dy, stream);
            stream.synchronize();
            float[] got = dy.download().data();
            double err = 0;
            for (int i = 0; i < got.length; i++) {
                assertTrue(Float.isFinite(got[i]), "non-finite output at " + i);
                err += (got[i] - want[i]) * (got[i] - want[i]);
            }
            double rel = Math.sqrt(err / norm);
            assertTrue(rel < (out == DType.F32 ? 1e-5 : 6e-3), m + "x" + n + "x" + k + (withBias ? " bias " : " ") + out
                    + ": relative L2 error " + rel);
        }
    }

    @Test
    void accumulateAddsTheProductInPlace() {
        long seed = 100;
        for (DType out : new DType[]{DType.BF16, DType.F32}) {
            checkAccumulate(37, 67, 53, true, out, seed++);
            checkAccumulate(5, 19, 7, false, out, seed++);
        }
    }

    /** Tuned (every candidate runs on the operands): y is put back before the real product adds to it. */
    @Test
    void tunedAccumulateAddsOnce() {
        assertTrue(512L * 384 * 256 >= Gemm.TUNE_MIN_MACS);
        checkAccumulate(512, 384, 256, true, DType.BF16, 120);
        checkAccumulate(512, 384, 256, true, DType.F32, 121);
    }
}
