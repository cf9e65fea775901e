package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cpu.AttentionResult;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.CpuAttentionBackward;
import tileattn.cpu.DoubleTensor;
import tileattn.cpu.Gradients;
import tileattn.cpu.ReferenceGradients;
import tileattn.cpu.TokenPermutation;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * The GPU backward against CpuAttentionBackward (fp32, tile order) and the double-precision raster-order
 * ReferenceGradients, on fresh random inputs rounded to the tensor type. The forward's output and log-sum-exp
 * come from the CPU forward (o rounded to the tensor type, as a GPU forward would store it); gradients are
 * poisoned (NaN) before every launch. bf16/fp16 operands and probabilities put the relative L2 error near 3e-3;
 * 1e-2 is the bound. Each comparison prints its errors.
 */
@Tag("gpu")
class TileAttentionBackwardKernelGpuTest {

    private static final double TOLERANCE = 1e-2;

    private static CudaContext context;
    private static TileAttentionBackwardKernel kernel;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        // The portable kernels explicitly: the tests below that take no path cover them on every device;
        // hopperPathMatchesCpuBackward and the block-size test cover the default wgmma kernels of compute capability 9.0.
        kernel = new TileAttentionBackwardKernel(KernelLibrary.of(context), TileAttentionBackwardKernel.Path.PORTABLE);
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

    private record Inputs(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor dOut, AttentionResult forward) {
    }

    /** Runs the backward on uploaded copies (o in the tensor type), gradients NaN-poisoned first. */
    private static Gradients runOnGpu(Inputs in, DType dtype, float scale, TokenLayout layout, Window[] windows) {
        return runOnGpu(kernel, in, dtype, scale, layout, windows);
    }

    private static Gradients runOnGpu(TileAttentionBackwardKernel kernel, Inputs in, DType dtype, float scale,
                                      TokenLayout layout, Window[] windows) {
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor q = DeviceTensor.upload(scope, in.q, dtype), k = DeviceTensor.upload(scope, in.k, dtype),
                    v = DeviceTensor.upload(scope, in.v, dtype), o = DeviceTensor.upload(scope, in.forward.out(), dtype),
                    dO = DeviceTensor.upload(scope, in.dOut, dtype),
                    lse = DeviceTensor.upload(scope, in.forward.lse(), DType.F32);
            DeviceTensor dq = poisoned(scope, dtype, in.q.shape()), dk = poisoned(scope, dtype, in.q.shape()),
                    dv = poisoned(scope, dtype, in.q.shape());
            if (windows == null) {
                kernel.dense(q, k, v, o, lse, dO, dq, dk, dv, scale, stream);
            } else {
                kernel.sta(q, k, v, o, lse, dO, dq, dk, dv, layout, windows, scale, stream);
            }
            return new Gradients(dq.download(), dk.download(), dv.download(), null);
        }
    }

    /** STA backward through {@link TileAttentionBackwardKernel#upload} with the block rows of dQ and dK/dV forced. */
    private static Gradients runOnGpu(TileAttentionBackwardKernel kernel, Inputs in, DType dtype, float scale,
                                      TokenLayout layout, Window[] windows, int dqRows, int dkdvRows) {
        int[] shape = in.q.shape();
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            TileAttentionBackwardKernel.DevicePlan plan = TileAttentionBackwardKernel.upload(
                    KvRangePlan.sta(layout, windows), QueryRangePlan.sta(layout, windows), dqRows, dkdvRows, scope);
            assertEquals(dqRows, plan.gradientQueries().plan().blockRows());
            assertEquals(dkdvRows, plan.keys().blockRows());
            assertEquals(128, plan.queries().plan().blockRows(), "the forward's plan is left as given");
            DeviceBuffer workspace = scope.allocate(kernel.workspaceBytesFor(shape[0], shape[1], shape[2], shape[3]));
            DeviceTensor q = DeviceTensor.upload(scope, in.q, dtype), k = DeviceTensor.upload(scope, in.k, dtype),
                    v = DeviceTensor.upload(scope, in.v, dtype), o = DeviceTensor.upload(scope, in.forward.out(), dtype),
                    dO = DeviceTensor.upload(scope, in.dOut, dtype),
                    lse = DeviceTensor.upload(scope, in.forward.lse(), DType.F32);
            DeviceTensor dq = poisoned(scope, dtype, shape), dk = poisoned(scope, dtype, shape),
                    dv = poisoned(scope, dtype, shape);
            kernel.backward(q, k, v, o, lse, dO, dq, dk, dv, plan, workspace, scale, stream);
            stream.synchronize();
            return new Gradients(dq.download(), dk.download(), dv.download(), null);
        }
    }

    private static DeviceTensor poisoned(DeviceScope scope, DType dtype, int[] shape) {
        DeviceTensor t = scope.allocateTensor(dtype, shape);
        t.buffer().fill((byte) 0xFF);
        return t;
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
        assertTrue(norm > 0, what + ": the reference is zero, the comparison would prove nothing");
        return Math.sqrt(diff / norm);
    }

    private static void assertGradientsClose(Gradients got, Gradients expected, String what) {
        double eq = relativeL2(got.dq(), expected.dq(), what + " dq");
        double ek = relativeL2(got.dk(), expected.dk(), what + " dk");
        double ev = relativeL2(got.dv(), expected.dv(), what + " dv");
        System.out.printf("backward %s: relative L2 dq %.2e dk %.2e dv %.2e%n", what, eq, ek, ev);
        assertTrue(eq < TOLERANCE && ek < TOLERANCE && ev < TOLERANCE,
                what + ": relative L2 errors dq " + eq + ", dk " + ek + ", dv " + ev);
    }

    private static Inputs staInputs(StaCase c, Random rnd, float scale) {
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        int[] shape = {c.batch, c.windows.length, layout.sequenceLength(), c.d};
        FloatTensor q = randomRounded(rnd, c.dtype, shape), k = randomRounded(rnd, c.dtype, shape),
                v = randomRounded(rnd, c.dtype, shape), dOut = randomRounded(rnd, c.dtype, shape);
        return new Inputs(q, k, v, dOut, CpuAttention.staForward(q, k, v, layout, c.windows, scale));
    }

    @Test
    void staMatchesCpuBackwardOnEdgeShapes() {
        Random rnd = new Random(4242);
        List<StaCase> cases = List.of(
                // grid 3x3x3 with partial tiles in every dimension, K = grid and a one-tile-deep window, one text token
                new StaCase(new Shape3(13, 17, 19), new Shape3(6, 8, 8), 1, 1, 128, DType.BF16, new Window(3, 3, 3), new Window(1, 3, 1)),
                // per-head windows (one tile, whole T with 5 of 6 in W, 3x3 in H/W), 256 text tokens
                new StaCase(new Shape3(7, 9, 23), new Shape3(4, 4, 4), 256, 1, 64, DType.F16,
                        new Window(1, 3, 3), new Window(2, 3, 5), new Window(1, 1, 1)),
                // a 2D image (T = 1), batch 2, windows clamped at every edge of a 5x7 grid
                new StaCase(new Shape3(1, 40, 56), new Shape3(1, 8, 8), 7, 2, 128, DType.BF16, new Window(1, 3, 5), new Window(1, 1, 7)),
                // edge-clamped windows on a 3x4x5 grid, no text
                new StaCase(new Shape3(12, 16, 20), new Shape3(4, 4, 4), 0, 1, 128, DType.F16, new Window(3, 3, 3), new Window(3, 1, 5)),
                // one partial tile smaller than a block, one text token
                new StaCase(new Shape3(5, 5, 5), new Shape3(6, 8, 8), 1, 1, 64, DType.BF16, new Window(1, 1, 1)),
                // K = 1 everywhere on a grid of whole tiles, no text
                new StaCase(new Shape3(12, 16, 24), new Shape3(6, 8, 8), 0, 1, 64, DType.BF16, new Window(1, 1, 1), new Window(1, 1, 3)));
        for (StaCase c : cases) {
            TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
            float scale = CpuAttention.defaultScale(c.d);
            Inputs in = staInputs(c, rnd, scale);
            Gradients expected = CpuAttentionBackward.sta(in.q, in.k, in.v, in.forward.out(), in.forward.lse(), in.dOut,
                    layout, c.windows, scale);
            assertGradientsClose(runOnGpu(in, c.dtype, scale, layout, c.windows), expected, "STA " + c);
        }
    }

    /**
     * Both block sizes (and the two mixed) on small and partial tiles of 1..64 tokens, fresh inputs per run: the
     * 64-row kernels' home ground, where a 128-row block holds rows of one tile only.
     */
    @Test
    void bothBlockSizesMatchCpuBackwardOnSmallTiles() {
        Random rnd = new Random(64);
        KernelLibrary library = KernelLibrary.of(context);
        List<TileAttentionBackwardKernel> kernels = context.device().computeCapabilityNumber() == 90
                ? List.of(kernel, new TileAttentionBackwardKernel(library, TileAttentionBackwardKernel.Path.HOPPER))
                : List.of(kernel);
        List<StaCase> cases = List.of(
                new StaCase(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 0, 1, 128, DType.BF16, new Window(3, 3, 3), new Window(1, 3, 1)),
                new StaCase(new Shape3(5, 7, 6), new Shape3(2, 3, 4), 5, 2, 64, DType.F16, new Window(1, 1, 1), new Window(3, 3, 1)),
                new StaCase(new Shape3(1, 21, 19), new Shape3(1, 8, 8), 1, 1, 64, DType.BF16, new Window(1, 3, 3)),
                new StaCase(new Shape3(6, 5, 7), new Shape3(4, 4, 4), 0, 1, 128, DType.F16, new Window(1, 1, 1)));
        int[][] sizes = {{64, 64}, {128, 128}, {64, 128}, {128, 64}};
        for (StaCase c : cases) {
            TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
            float scale = CpuAttention.defaultScale(c.d);
            for (TileAttentionBackwardKernel k : kernels) {
                for (int[] rows : c == cases.get(0) ? sizes : Arrays.copyOf(sizes, 2)) {
                    Inputs in = staInputs(c, rnd, scale);
                    Gradients expected = CpuAttentionBackward.sta(in.q, in.k, in.v, in.forward.out(), in.forward.lse(),
                            in.dOut, layout, c.windows, scale);
                    assertGradientsClose(runOnGpu(k, in, c.dtype, scale, layout, c.windows, rows[0], rows[1]), expected,
                            k.path() + " STA dq rows " + rows[0] + ", dK/dV rows " + rows[1] + " " + c);
                }
            }
        }
    }

    /** The wgmma kernels on compute capability 9.0 (chosen explicitly); elsewhere asking for them is refused. */
    @Test
    void hopperPathMatchesCpuBackward() {
        KernelLibrary library = KernelLibrary.of(context);
        if (context.device().computeCapabilityNumber() != 90) {
            assertMessage(() -> new TileAttentionBackwardKernel(library, TileAttentionBackwardKernel.Path.HOPPER),
                    "compute capability 9.0");
            return;
        }
        TileAttentionBackwardKernel hopper = new TileAttentionBackwardKernel(library, TileAttentionBackwardKernel.Path.HOPPER);
        Random rnd = new Random(90);
        List<StaCase> cases = List.of(
                new StaCase(new Shape3(13, 17, 19), new Shape3(6, 8, 8), 1, 1, 128, DType.BF16, new Window(3, 3, 3), new Window(1, 3, 1)),
                new StaCase(new Shape3(7, 9, 23), new Shape3(4, 4, 4), 256, 1, 64, DType.F16,
                        new Window(1, 3, 3), new Window(2, 3, 5), new Window(1, 1, 1)),
                new StaCase(new Shape3(5, 5, 5), new Shape3(6, 8, 8), 1, 2, 64, DType.BF16, new Window(1, 1, 1)));
        for (StaCase c : cases) {
            TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
            float scale = CpuAttention.defaultScale(c.d);
            Inputs in = staInputs(c, rnd, scale);
            Gradients expected = CpuAttentionBackward.sta(in.q, in.k, in.v, in.forward.out(), in.forward.lse(), in.dOut,
                    layout, c.windows, scale);
            assertGradientsClose(runOnGpu(hopper, in, c.dtype, scale, layout, c.windows), expected, "HOPPER STA " + c);
        }
        int[] shape = {1, 2, 257, 128};
        FloatTensor q = randomRounded(rnd, DType.F16, shape), k = randomRounded(rnd, DType.F16, shape),
                v = randomRounded(rnd, DType.F16, shape), dOut = randomRounded(rnd, DType.F16, shape);
        float scale = CpuAttention.defaultScale(shape[3]);
        Inputs in = new Inputs(q, k, v, dOut, CpuAttention.denseForward(q, k, v, scale));
        assertGradientsClose(runOnGpu(hopper, in, DType.F16, scale, null, null),
                CpuAttentionBackward.dense(q, k, v, in.forward.out(), in.forward.lse(), dOut, scale), "HOPPER dense");
    }

    /**
     * The fused wgmma kernel (dQ added from the dK/dV kernel into the workspace's fp32 accumulator) with both block
     * sizes, d 64 and 128, text, partial tiles, batch 2, and dense; a workspace without room for the accumulator is
     * refused, and so is the path off compute capability 9.0.
     */
    @Test
    void hopperFusedPathMatchesCpuBackward() {
        KernelLibrary library = KernelLibrary.of(context);
        if (context.device().computeCapabilityNumber() != 90) {
            assertMessage(() -> new TileAttentionBackwardKernel(library, TileAttentionBackwardKernel.Path.HOPPER_FUSED),
                    "compute capability 9.0");
            return;
        }
        TileAttentionBackwardKernel fused = new TileAttentionBackwardKernel(library, TileAttentionBackwardKernel.Path.HOPPER_FUSED);
        Random rnd = new Random(91);
        List<StaCase> cases = List.of(
                new StaCase(new Shape3(13, 17, 19), new Shape3(6, 8, 8), 1, 1, 128, DType.BF16, new Window(3, 3, 3), new Window(1, 3, 1)),
                new StaCase(new Shape3(7, 9, 23), new Shape3(4, 4, 4), 256, 1, 64, DType.F16,
                        new Window(1, 3, 3), new Window(2, 3, 5), new Window(1, 1, 1)),
                new StaCase(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 0, 2, 128, DType.F16, new Window(3, 3, 3)));
        for (StaCase c : cases) {
            TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
            float scale = CpuAttention.defaultScale(c.d);
            for (int rows : new int[]{128, 64}) {
                Inputs in = staInputs(c, rnd, scale);
                Gradients expected = CpuAttentionBackward.sta(in.q, in.k, in.v, in.forward.out(), in.forward.lse(),
                        in.dOut, layout, c.windows, scale);
                assertGradientsClose(runOnGpu(fused, in, c.dtype, scale, layout, c.windows, rows, rows), expected,
                        "HOPPER_FUSED STA rows " + rows + " " + c);
            }
        }
        int[] shape = {1, 2, 257, 128};
        FloatTensor q = randomRounded(rnd, DType.BF16, shape), k = randomRounded(rnd, DType.BF16, shape),
                v = randomRounded(rnd, DType.BF16, shape), dOut = randomRounded(rnd, DType.BF16, shape);
        float scale = CpuAttention.defaultScale(shape[3]);
        Inputs in = new Inputs(q, k, v, dOut, CpuAttention.denseForward(q, k, v, scale));
        assertGradientsClose(runOnGpu(fused, in, DType.BF16, scale, null, null),
                CpuAttentionBackward.dense(q, k, v, in.forward.out(), in.forward.lse(), dOut, scale), "HOPPER_FUSED dense");
        assertTrue(fused.workspaceBytesFor(1, 2, 257, 128) >= TileAttentionBackwardKernel.workspaceBytes(1, 2, 257) + 4L * 2 * 257 * 128,
                "the fused workspace holds the fp32 dQ accumulator");
        try (DeviceScope scope = context.openScope()) {
            TokenLayout layout = TokenLayout.of(new Shape3(6, 8, 8), new Shape3(6, 8, 8), 0);
            int s = layout.sequenceLength();
            Window[] one = {new Window(1, 1, 1)};
            DeviceTensor[] t = new DeviceTensor[8];
            for (int i = 0; i < t.length; i++) {
                t[i] = scope.allocateTensor(DType.BF16, 1, 1, s, 64);
            }
            DeviceTensor lse = scope.allocateTensor(DType.F32, 1, 1, s);
            TileAttentionBackwardKernel.DevicePlan plan = TileAttentionBackwardKernel.upload(KvRangePlan.sta(layout, one),
                    QueryRangePlan.sta(layout, one), scope);
            DeviceBuffer unfusedSize = scope.allocate(TileAttentionBackwardKernel.workspaceBytes(1, 1, s));
            assertMessage(() -> fused.backward(t[0], t[1], t[2], t[3], lse, t[4], t[5], t[6], t[7], plan, unfusedSize,
                    0.1f, scope.createStream()), "workspace");
        }
    }

    @Test
    void staMatchesTheDoublePrecisionReferenceInRasterOrder() {
        Random rnd = new Random(17);
        StaCase c = new StaCase(new Shape3(6, 10, 9), new Shape3(2, 4, 4), 3, 1, 64, DType.BF16, new Window(3, 1, 3), new Window(1, 3, 3));
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        float scale = 0.3f;
        Inputs in = staInputs(c, rnd, scale);
        ReferenceGradients.Gradients ref = ReferenceGradients.sta(raster(in.q, layout), raster(in.k, layout),
                raster(in.v, layout), raster(in.dOut, layout), layout, c.windows, scale);
        Gradients got = runOnGpu(in, c.dtype, scale, layout, c.windows);
        Gradients gotRaster = new Gradients(TokenPermutation.toRaster(got.dq(), layout),
                TokenPermutation.toRaster(got.dk(), layout), TokenPermutation.toRaster(got.dv(), layout), null);
        assertGradientsClose(gotRaster, new Gradients(ref.dq().toFloat(), ref.dk().toFloat(), ref.dv().toFloat(), null),
                "STA vs float64 raster " + c);
    }

    private static DoubleTensor raster(FloatTensor tileOrder, TokenLayout layout) {
        return DoubleTensor.of(TokenPermutation.toRaster(tileOrder, layout));
    }

    @Test
    void denseMatchesCpuBackward() {
        Random rnd = new Random(99);
        int[][] shapes = {{2, 3, 1000, 64}, {1, 2, 257, 128}, {1, 1, 3, 128}};
        for (int[] shape : shapes) {
            DType dtype = shape[3] == 64 ? DType.BF16 : DType.F16;
            FloatTensor q = randomRounded(rnd, dtype, shape), k = randomRounded(rnd, dtype, shape),
                    v = randomRounded(rnd, dtype, shape), dOut = randomRounded(rnd, dtype, shape);
            float scale = CpuAttention.defaultScale(shape[3]);
            Inputs in = new Inputs(q, k, v, dOut, CpuAttention.denseForward(q, k, v, scale));
            Gradients expected = CpuAttentionBackward.dense(q, k, v, in.forward.out(), in.forward.lse(), dOut, scale);
            assertGradientsClose(runOnGpu(in, dtype, scale, null, null), expected,
                    "dense " + Arrays.toString(shape) + " " + dtype);
        }
    }

    /** The queued path with plans and workspace uploaded once: two runs give the same bits (no atomics). */
    @Test
    void reusesAnUploadedPlanAndIsDeterministic() {
        Random rnd = new Random(5);
        StaCase c = new StaCase(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 256, 1, 128, DType.BF16, new Window(3, 3, 3), new Window(1, 1, 1));
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        float scale = CpuAttention.defaultScale(c.d);
        Inputs in = staInputs(c, rnd, scale);
        int[] shape = in.q.shape();
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            TileAttentionBackwardKernel.DevicePlan plan = TileAttentionBackwardKernel.upload(
                    KvRangePlan.sta(layout, c.windows), QueryRangePlan.sta(layout, c.windows), scope);
            assertEquals(64, plan.keys().blockRows(), "4x4x4 tiles take 64-row blocks");
            assertEquals(64, plan.gradientQueries().plan().blockRows(), "4x4x4 tiles take 64-row blocks");
            DeviceBuffer workspace = scope.allocate(TileAttentionBackwardKernel.workspaceBytes(shape[0], shape[1], shape[2]));
            DeviceTensor q = DeviceTensor.upload(scope, in.q, c.dtype), k = DeviceTensor.upload(scope, in.k, c.dtype),
                    v = DeviceTensor.upload(scope, in.v, c.dtype), o = DeviceTensor.upload(scope, in.forward.out(), c.dtype),
                    dO = DeviceTensor.upload(scope, in.dOut, c.dtype),
                    lse = DeviceTensor.upload(scope, in.forward.lse(), DType.F32);
            FloatTensor[][] runs = new FloatTensor[2][];
            for (int r = 0; r < 2; r++) {
                DeviceTensor dq = poisoned(scope, c.dtype, shape), dk = poisoned(scope, c.dtype, shape),
                        dv = poisoned(scope, c.dtype, shape);
                kernel.backward(q, k, v, o, lse, dO, dq, dk, dv, plan, workspace, scale, stream);
                stream.synchronize();
                runs[r] = new FloatTensor[]{dq.download(), dk.download(), dv.download()};
            }
            for (int g = 0; g < 3; g++) {
                assertArrayEquals(runs[0][g].data(), runs[1][g].data(), "gradient " + g + " differs between runs");
            }
            Gradients expected = CpuAttentionBackward.sta(in.q, in.k, in.v, in.forward.out(), in.forward.lse(), in.dOut,
                    layout, c.windows, scale);
            assertGradientsClose(new Gradients(runs[0][0], runs[0][1], runs[0][2], null), expected, "queued STA " + c);
        }
    }

    @Test
    void rejectsBadArgumentsNamingTheProblem() {
        TokenLayout layout = TokenLayout.of(new Shape3(6, 8, 8), new Shape3(6, 8, 8), 0);
        int s = layout.sequenceLength();
        Window[] one = {new Window(1, 1, 1)};
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor[] t = new DeviceTensor[8];
            for (int i = 0; i < t.length; i++) {
                t[i] = scope.allocateTensor(DType.BF16, 1, 1, s, 64);
            }
            DeviceTensor q = t[0], k = t[1], v = t[2], o = t[3], dO = t[4], dq = t[5], dk = t[6], dv = t[7];
            DeviceTensor lse = scope.allocateTensor(DType.F32, 1, 1, s);
            assertMessage(() -> kernel.sta(q, k, v, o, lse, dO, scope.allocateTensor(DType.F16, 1, 1, s, 64), dk, dv, layout, one, 0.1f, stream), "element type");
            assertMessage(() -> kernel.sta(q, k, v, o, lse, scope.allocateTensor(DType.BF16, 1, 1, s, 32), dq, dk, dv, layout, one, 0.1f, stream), "one shape");
            DeviceTensor d32 = scope.allocateTensor(DType.BF16, 1, 1, s, 32);
            assertMessage(() -> kernel.dense(d32, d32, d32, d32, lse, d32, scope.allocateTensor(DType.BF16, 1, 1, s, 32),
                    scope.allocateTensor(DType.BF16, 1, 1, s, 32), scope.allocateTensor(DType.BF16, 1, 1, s, 32), 0.1f, stream), "head dim");
            DeviceTensor f32 = scope.allocateTensor(DType.F32, 1, 1, s, 64);
            assertMessage(() -> kernel.dense(f32, f32, f32, f32, lse, f32, scope.allocateTensor(DType.F32, 1, 1, s, 64),
                    scope.allocateTensor(DType.F32, 1, 1, s, 64), scope.allocateTensor(DType.F32, 1, 1, s, 64), 0.1f, stream), "BF16 or F16");
            assertMessage(() -> kernel.sta(q, k, v, o, lse, dO, dq, dk, dv, layout, new Window[]{one[0], one[0]}, 0.1f, stream), "plan");
            assertMessage(() -> kernel.sta(q, k, v, o, lse, dO, dq, dk, dv, layout, one, -1f, stream), "scale");
            assertMessage(() -> kernel.sta(q, k, v, o, scope.allocateTensor(DType.F32, 1, 1, s + 1), dO, dq, dk, dv, layout, one, 0.1f, stream), "lse");
            assertMessage(() -> kernel.sta(q, k, v, o, null, dO, dq, dk, dv, layout, one, 0.1f, stream), "lse");
            assertMessage(() -> kernel.sta(q, k, v, o, lse, dO, q, dk, dv, layout, one, 0.1f, stream), "overlaps");
            assertMessage(() -> kernel.sta(q, k, v, o, lse, dO, dq, dq, dv, layout, one, 0.1f, stream), "overlaps");
            DeviceTensor misaligned = new DeviceTensor(scope.allocate(2L * s * 64 + 16).slice(2, 2L * s * 64), new int[]{1, 1, s, 64}, DType.BF16);
            assertMessage(() -> kernel.sta(q, k, v, misaligned, lse, dO, dq, dk, dv, layout, one, 0.1f, stream), "16-byte");
            TileAttentionBackwardKernel.DevicePlan plan = TileAttentionBackwardKernel.upload(KvRangePlan.sta(layout, one),
                    QueryRangePlan.sta(layout, one), scope);
            DeviceBuffer small = scope.allocate(TileAttentionBackwardKernel.workspaceBytes(1, 1, s) - 4);
            assertMessage(() -> kernel.backward(q, k, v, o, lse, dO, dq, dk, dv, plan, small, 0.1f, stream), "workspace");
            assertMessage(() -> TileAttentionBackwardKernel.upload(KvRangePlan.sta(layout, one), QueryRangePlan.dense(s + 1, 1), scope), "key plan");
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should mention " + fragment);
    }
}
