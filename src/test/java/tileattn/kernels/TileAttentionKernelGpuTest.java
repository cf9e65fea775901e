package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cpu.AttentionResult;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.ReferenceAttention;
import tileattn.cpu.TokenPermutation;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Every attention kernel (the portable one everywhere, the two Hopper ones on compute capability 9.0) against the CPU
 * attention in fp32 and the double-precision reference, on fresh random inputs rounded to the tensor type, with
 * outputs poisoned (NaN) before every launch. bf16/fp16 operands and probabilities put the relative L2 error
 * near 2e-3; 1e-2 is the bound.
 */
@Tag("gpu")
class TileAttentionKernelGpuTest {

    private static final double TOLERANCE = 1e-2;
    private static final double LSE_TOLERANCE = 1e-3;

    private static CudaContext context;
    private static List<TileAttentionKernel> kernels;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        KernelLibrary library = KernelLibrary.of(context);
        kernels = new ArrayList<>(List.of(new TileAttentionKernel(library, TileAttentionKernel.Path.PORTABLE)));
        if (context.device().computeCapabilityNumber() == 90) {
            kernels.add(new TileAttentionKernel(library, TileAttentionKernel.Path.HOPPER));
            kernels.add(new TileAttentionKernel(library, TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED));
            kernels.add(new TileAttentionKernel(library, TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED, true));
            kernels.add(new TileAttentionKernel(library, TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED, true, 128));
            assertThrows(IllegalArgumentException.class, () -> new TileAttentionKernel(library,
                    TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED, false, 64), "64-key blocks are not built");
        }
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    private record StaCase(Shape3 video, Shape3 tile, int text, int batch, int d, DType dtype, Window... windows) {
        @Override
        public String toString() {
            return "video " + video + " tile " + tile + " L=" + text + " B=" + batch + " d=" + d + " " + dtype
                    + " windows " + Arrays.toString(windows);
        }
    }

    /** Gaussian values already rounded to {@code dtype}, so host and device see the same inputs. */
    private static FloatTensor randomRounded(Random rnd, DType dtype, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = dtype.decodeHalf(dtype.encodeHalf((float) rnd.nextGaussian()));
        }
        return t;
    }

    private record Outputs(FloatTensor out, FloatTensor lse) {
    }

    /** Runs one kernel on uploaded copies, NaN-poisoning o and lse first. */
    private static Outputs runSta(TileAttentionKernel kernel, StaCase c, FloatTensor q, FloatTensor k, FloatTensor v,
                                  float scale) {
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor dq = DeviceTensor.upload(scope, q, c.dtype), dk = DeviceTensor.upload(scope, k, c.dtype),
                    dv = DeviceTensor.upload(scope, v, c.dtype);
            DeviceTensor o = scope.allocateTensor(c.dtype, q.shape());
            DeviceTensor lse = scope.allocateTensor(DType.F32, q.dim(0), q.dim(1), q.dim(2));
            o.buffer().fill((byte) 0xFF);
            lse.buffer().fill((byte) 0xFF);
            kernel.sta(dq, dk, dv, o, lse, layout, c.windows, scale, stream);
            return new Outputs(o.download(), lse.download());
        }
    }

    private static double relativeL2(FloatTensor actual, FloatTensor expected, String what) {
        double diff = 0, norm = 0;
        float[] a = actual.data(), b = expected.data();
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                fail(what + ": element " + i + " is " + a[i] + " (unwritten or not finite)");
            }
            double e = (double) a[i] - b[i];
            diff += e * e;
            norm += (double) b[i] * b[i];
        }
        return Math.sqrt(diff / norm);
    }

    private static void assertLseClose(FloatTensor actual, FloatTensor expected, String what) {
        float[] a = actual.data(), b = expected.data();
        for (int i = 0; i < a.length; i++) {
            double err = Math.abs((double) a[i] - b[i]) / Math.max(1.0, Math.abs(b[i]));
            if (!(err < LSE_TOLERANCE)) {
                fail(what + ": lse row " + i + " is " + a[i] + ", expected " + b[i]);
            }
        }
    }

    private static void checkSta(StaCase c, Random rnd) {
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        int[] shape = {c.batch, c.windows.length, layout.sequenceLength(), c.d};
        FloatTensor q = randomRounded(rnd, c.dtype, shape), k = randomRounded(rnd, c.dtype, shape),
                v = randomRounded(rnd, c.dtype, shape);
        float scale = CpuAttention.defaultScale(c.d);
        AttentionResult expected = CpuAttention.staForward(q, k, v, layout, c.windows, scale);
        for (TileAttentionKernel kernel : kernels) {
            String what = kernel + " " + c;
            Outputs got = runSta(kernel, c, q, k, v, scale);
            double err = relativeL2(got.out, expected.out(), what);
            assertTrue(err < TOLERANCE, what + ": relative L2 error " + err);
            assertLseClose(got.lse, expected.lse(), what);
        }
    }

    @Test
    void staMatchesCpuAttentionOnEdgeShapes() {
        Random rnd = new Random(2024);
        List<StaCase> cases = List.of(
                // grid 3x3x3 with partial tiles in every dimension, window = grid, one text token
                new StaCase(new Shape3(13, 17, 19), new Shape3(6, 8, 8), 1, 1, 128, DType.BF16, new Window(3, 3, 3), new Window(1, 3, 1)),
                // per-head windows (one tile, whole T with 5 of 6 in W, 3x3 in H/W), 256 text tokens
                new StaCase(new Shape3(7, 9, 23), new Shape3(4, 4, 4), 256, 1, 64, DType.F16,
                        new Window(1, 3, 3), new Window(2, 3, 5), new Window(1, 1, 1)),
                // a 2D image (T = 1), batch 2, windows at every edge of a 5x7 grid
                new StaCase(new Shape3(1, 40, 56), new Shape3(1, 8, 8), 7, 2, 128, DType.BF16, new Window(1, 3, 5), new Window(1, 1, 7)),
                // edge-clamped windows on a 5x6x10 grid, no text
                new StaCase(new Shape3(20, 24, 40), new Shape3(4, 4, 4), 0, 1, 128, DType.F16, new Window(3, 3, 3), new Window(5, 1, 9)),
                // one partial tile smaller than a query block, one text token
                new StaCase(new Shape3(5, 5, 5), new Shape3(6, 8, 8), 1, 1, 64, DType.BF16, new Window(1, 1, 1)));
        for (StaCase c : cases) {
            checkSta(c, rnd);
        }
    }

    @Test
    void staMatchesTheDoublePrecisionReferenceInRasterOrder() {
        Random rnd = new Random(7);
        StaCase c = new StaCase(new Shape3(6, 10, 9), new Shape3(2, 4, 4), 3, 1, 64, DType.BF16, new Window(3, 1, 3), new Window(1, 3, 3));
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        int[] shape = {1, 2, layout.sequenceLength(), c.d};
        FloatTensor q = randomRounded(rnd, c.dtype, shape), k = randomRounded(rnd, c.dtype, shape),
                v = randomRounded(rnd, c.dtype, shape);
        float scale = 0.3f;
        FloatTensor expected = ReferenceAttention.sta(TokenPermutation.toRaster(q, layout), TokenPermutation.toRaster(k, layout),
                TokenPermutation.toRaster(v, layout), layout, c.windows, scale);
        for (TileAttentionKernel kernel : kernels) {
            FloatTensor got = TokenPermutation.toRaster(runSta(kernel, c, q, k, v, scale).out, layout);
            double err = relativeL2(got, expected, kernel + " " + c);
            assertTrue(err < TOLERANCE, kernel + " " + c + ": relative L2 error " + err);
        }
    }

    @Test
    void denseMatchesCpuAttention() {
        Random rnd = new Random(99);
        int[][] shapes = {{2, 3, 1000, 64}, {1, 2, 257, 128}, {1, 1, 1, 128}};
        for (int[] shape : shapes) {
            DType dtype = shape[3] == 64 ? DType.BF16 : DType.F16;
            FloatTensor q = randomRounded(rnd, dtype, shape), k = randomRounded(rnd, dtype, shape),
                    v = randomRounded(rnd, dtype, shape);
            float scale = CpuAttention.defaultScale(shape[3]);
            AttentionResult expected = CpuAttention.denseForward(q, k, v, scale);
            for (TileAttentionKernel kernel : kernels) {
                String what = kernel + " dense " + Arrays.toString(shape) + " " + dtype;
                try (DeviceScope scope = context.openScope()) {
                    CudaStream stream = scope.createStream();
                    DeviceTensor o = scope.allocateTensor(dtype, shape);
                    DeviceTensor lse = scope.allocateTensor(DType.F32, shape[0], shape[1], shape[2]);
                    o.buffer().fill((byte) 0xFF);
                    lse.buffer().fill((byte) 0xFF);
                    kernel.dense(DeviceTensor.upload(scope, q, dtype), DeviceTensor.upload(scope, k, dtype),
                            DeviceTensor.upload(scope, v, dtype), o, lse, scale, stream);
                    double err = relativeL2(o.download(), expected.out(), what);
                    assertTrue(err < TOLERANCE, what + ": relative L2 error " + err);
                    assertLseClose(lse.download(), expected.lse(), what);
                }
            }
        }
    }

    @Test
    void tokenRowOutputHoldsTheHeadPlanesValuesBitForBit() {
        Random rnd = new Random(41);
        // Partial tiles, text rows, two batch entries and unequal windows per head, so every output row position
        // (plane, row) maps to a distinct token-row slot.
        StaCase[] cases = {
                new StaCase(new Shape3(5, 9, 7), new Shape3(2, 4, 4), 13, 2, 128, DType.BF16,
                        new Window(1, 3, 1), new Window(3, 3, 1), new Window(1, 1, 1)),
                new StaCase(new Shape3(3, 8, 8), new Shape3(1, 4, 4), 0, 2, 64, DType.F16,
                        new Window(1, 1, 1), new Window(3, 1, 1))};
        for (StaCase c : cases) {
            TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
            int heads = c.windows.length, seq = layout.sequenceLength();
            int[] shape = {c.batch, heads, seq, c.d};
            FloatTensor q = randomRounded(rnd, c.dtype, shape), k = randomRounded(rnd, c.dtype, shape),
                    v = randomRounded(rnd, c.dtype, shape);
            float scale = CpuAttention.defaultScale(c.d);
            for (TileAttentionKernel kernel : kernels) {
                String what = kernel + " " + c;
                float[] planes = runSta(kernel, c, q, k, v, scale).out.data();
                try (DeviceScope scope = context.openScope()) {
                    CudaStream stream = scope.createStream();
                    DeviceTensor rows = scope.allocateTensor(c.dtype, c.batch, seq, heads * c.d);
                    rows.buffer().fillAsync((byte) 0xFF, stream);
                    kernel.sta(DeviceTensor.upload(scope, q, c.dtype), DeviceTensor.upload(scope, k, c.dtype),
                            DeviceTensor.upload(scope, v, c.dtype), rows, null, layout, c.windows, scale, stream);
                    TokenRows.assertSameAsPlanes(planes, rows.download().data(), c.batch, heads, seq, c.d, what);
                }
            }
        }
    }

    @Test
    void autoPicksTheWarpSpecializedKernelOnHopperOnly() {
        KernelLibrary library = KernelLibrary.of(context);
        boolean hopper = context.device().computeCapabilityNumber() == 90;
        assertEquals(hopper ? TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED : TileAttentionKernel.Path.PORTABLE,
                new TileAttentionKernel(library).path());
        if (!hopper) {
            assertMessage(() -> new TileAttentionKernel(library, TileAttentionKernel.Path.HOPPER_WARP_SPECIALIZED), "9.0");
        }
    }

    @Test
    void rejectsBadArgumentsNamingTheProblem() {
        TokenLayout layout = TokenLayout.of(new Shape3(6, 8, 8), new Shape3(6, 8, 8), 0);
        int s = layout.sequenceLength();
        Window[] one = {new Window(1, 1, 1)};
        TileAttentionKernel kernel = kernels.get(0);
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor q = scope.allocateTensor(DType.BF16, 1, 1, s, 64);
            DeviceTensor k = scope.allocateTensor(DType.BF16, 1, 1, s, 64);
            DeviceTensor v = scope.allocateTensor(DType.BF16, 1, 1, s, 64);
            DeviceTensor o = scope.allocateTensor(DType.BF16, 1, 1, s, 64);
            assertMessage(() -> kernel.sta(q, k, v, scope.allocateTensor(DType.F16, 1, 1, s, 64), null, layout, one, 0.1f, stream), "element type");
            assertMessage(() -> kernel.sta(q, k, scope.allocateTensor(DType.BF16, 1, 1, s, 32), o, null, layout, one, 0.1f, stream), "one shape");
            DeviceTensor d32 = scope.allocateTensor(DType.BF16, 1, 1, s, 32);
            assertMessage(() -> kernel.dense(d32, d32, d32, scope.allocateTensor(DType.BF16, 1, 1, s, 32), null, 0.1f, stream), "head dim");
            DeviceTensor f32 = scope.allocateTensor(DType.F32, 1, 1, s, 64);
            assertMessage(() -> kernel.dense(f32, f32, f32, scope.allocateTensor(DType.F32, 1, 1, s, 64), null, 0.1f, stream), "BF16 or F16");
            assertMessage(() -> kernel.sta(q, k, v, o, null, layout, new Window[]{one[0], one[0]}, 0.1f, stream), "plan");
            assertMessage(() -> kernel.sta(q, k, v, o, null, layout, one, -1f, stream), "scale");
            assertMessage(() -> kernel.sta(q, k, v, o, scope.allocateTensor(DType.F32, 1, 1, s + 1), layout, one, 0.1f, stream), "lse");
            assertMessage(() -> kernel.sta(q, k, v, q, null, layout, one, 0.1f, stream), "overlaps");
            assertMessage(() -> kernel.sta(q, k, v, scope.allocateTensor(DType.BF16, 1, s, 128), null, layout, one, 0.1f,
                    stream), "token rows [1, " + s + ", 64]");
            DeviceTensor misaligned = new DeviceTensor(scope.allocate(2L * s * 64 + 16).slice(2, 2L * s * 64), new int[]{1, 1, s, 64}, DType.BF16);
            assertMessage(() -> kernel.sta(misaligned, k, v, o, null, layout, one, 0.1f, stream), "16-byte");
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should mention " + fragment);
    }
}
