package tileattn.api;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.ReferenceAttention;
import tileattn.cpu.TokenPermutation;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaOutOfMemoryException;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.kernels.TileAttentionKernel;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * The GPU backend through the public API: raster-order host tensors via {@link Attention} against the float64
 * raster-order reference, device tensors in tile order and in raster order against the CPU kernels, with outputs
 * poisoned (NaN) first; the refusal of VSA on device tensors, bad inputs, out-of-memory recovery and the plan
 * cache. Every kernel path the device runs is covered, in bf16 and fp16 (VSA and training: GpuTrainingGpuTest). Inputs are fresh Gaussian values; bf16 operands and
 * probabilities put the relative L2 error near 3e-3 to 4e-3, and 1e-2 is the bound.
 */
@Tag("gpu")
class GpuBackendGpuTest {

    private static final double TOLERANCE = 1e-2;

    private static CudaContext context;
    private static final List<GpuBackend> backends = new ArrayList<>();

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        backends.add(new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.PORTABLE));
        if (context.device().computeCapabilityNumber() == 90) {
            backends.add(new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.HOPPER));
        }
        backends.add(new GpuBackend(context, DType.F16, TileAttentionKernel.Path.AUTO));
    }

    @AfterAll
    static void close() {
        backends.forEach(GpuBackend::close);
        backends.clear();
        if (context != null) {
            context.close();
        }
    }

    private static String name(GpuBackend b) {
        return b.kernelPath() + "/" + b.hostDType();
    }

    private static FloatTensor gaussian(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    /** Gaussian values already rounded to {@code dtype}, so that host and device compute on the same inputs. */
    private static FloatTensor rounded(Random rnd, DType dtype, int... shape) {
        FloatTensor t = gaussian(rnd, shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = dtype.decodeHalf(dtype.encodeHalf(data[i]));
        }
        return t;
    }

    /** Relative L2 error; fails on any non-finite element (an unwritten, NaN-poisoned one included). */
    private static void assertClose(FloatTensor expected, FloatTensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        double diff = 0, norm = 0;
        float[] a = actual.data(), e = expected.data();
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                fail(what + ": element " + i + " is " + a[i] + " (unwritten or not finite)");
            }
            diff += ((double) a[i] - e[i]) * ((double) a[i] - e[i]);
            norm += (double) e[i] * e[i];
        }
        double err = Math.sqrt(diff / norm);
        assertTrue(err < TOLERANCE, what + ": relative L2 error " + err);
    }

    private record StaCase(Shape3 video, Shape3 tile, int text, int batch, int d, boolean shared, Window... windows) {
        TokenLayout layout() {
            return TokenLayout.of(video, tile, text);
        }

        AttentionSpec.Sta spec() {
            return shared ? AttentionSpec.Sta.of(layout(), windows[0]) : AttentionSpec.Sta.perHead(layout(), windows);
        }

        int heads() {
            return shared ? 2 : windows.length;
        }

        Window[] windowsPerHead() {
            return spec().windowsFor(heads());
        }

        int[] shape() {
            return new int[]{batch, heads(), layout().sequenceLength(), d};
        }

        @Override
        public String toString() {
            return "video " + video + " tile " + tile + " L=" + text + " B=" + batch + " d=" + d + " windows "
                    + Arrays.toString(windows);
        }
    }

    private static final List<StaCase> RASTER_CASES = List.of(
            // grid 3x3x3 with partial tiles on every axis, per-head windows incl. the whole grid, no text
            new StaCase(new Shape3(5, 9, 11), new Shape3(2, 4, 4), 0, 1, 64, false,
                    new Window(3, 3, 3), new Window(1, 1, 1), new Window(3, 1, 3)),
            // one text token, a window clamped at every edge of a 2x3x3 grid, shared by both heads
            new StaCase(new Shape3(7, 10, 9), new Shape3(4, 4, 4), 1, 1, 128, true, new Window(1, 3, 3)),
            // 256 text tokens (more than the video's partial last tile), per-head windows
            new StaCase(new Shape3(3, 12, 20), new Shape3(2, 8, 8), 256, 1, 64, false,
                    new Window(1, 1, 1), new Window(2, 2, 3)),
            // a 2D image (T = 1), batch 2, five text tokens
            new StaCase(new Shape3(1, 20, 24), new Shape3(1, 8, 8), 5, 2, 128, true, new Window(1, 1, 3)));

    @Test
    void rasterHostTensorsMatchTheDoublePrecisionReference() {
        Random rnd = new Random(41);
        for (StaCase c : RASTER_CASES) {
            FloatTensor q = gaussian(rnd, c.shape()), k = gaussian(rnd, c.shape()), v = gaussian(rnd, c.shape());
            double scale = 1 / Math.sqrt(c.d);
            FloatTensor sta = ReferenceAttention.sta(q, k, v, c.layout(), c.windowsPerHead(), scale);
            FloatTensor dense = ReferenceAttention.dense(q, k, v, scale);
            for (GpuBackend backend : backends) {
                Attention attention = new Attention(backend);
                assertClose(sta, attention.attend(q, k, v, c.spec()), name(backend) + " STA " + c);
                assertClose(dense, attention.attend(q, k, v, AttentionSpec.dense()), name(backend) + " dense " + c);
            }
        }
        FloatTensor q = gaussian(rnd, 1, 2, 77, 64), k = gaussian(rnd, 1, 2, 77, 64), v = gaussian(rnd, 1, 2, 77, 64);
        for (GpuBackend backend : backends) {
            assertClose(ReferenceAttention.dense(q, k, v, 0.3), new Attention(backend).attend(q, k, v,
                    AttentionSpec.dense(), 0.3f), name(backend) + " dense S=77, scale 0.3");
        }
    }

    @Test
    void tileOrderDeviceTensorsMatchCpuAttentionWithPoisonedOutputs() {
        Random rnd = new Random(42);
        StaCase c = new StaCase(new Shape3(6, 16, 13), new Shape3(2, 8, 8), 3, 1, 128, false,
                new Window(3, 1, 1), new Window(1, 1, 2), new Window(3, 2, 2));
        TokenLayout layout = c.layout();
        for (GpuBackend backend : backends) {
            DType dtype = backend.hostDType();
            FloatTensor q = rounded(rnd, dtype, c.shape()), k = rounded(rnd, dtype, c.shape()),
                    v = rounded(rnd, dtype, c.shape());
            float scale = CpuAttention.defaultScale(c.d);
            FloatTensor expectedSta = CpuAttention.sta(q, k, v, layout, c.windowsPerHead(), scale);
            FloatTensor expectedDense = CpuAttention.dense(q, k, v, scale);
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                DeviceTensor dq = DeviceTensor.upload(scope, q, dtype), dk = DeviceTensor.upload(scope, k, dtype),
                        dv = DeviceTensor.upload(scope, v, dtype);
                context.synchronize();
                DeviceTensor out = scope.allocateTensor(dtype, c.shape());
                out.buffer().fillAsync((byte) 0xFF, stream);
                backend.attend(dq, dk, dv, out, c.spec(), scale, stream);
                stream.synchronize();
                assertClose(expectedSta, out.download(), name(backend) + " tile-order STA " + c);
                DeviceTensor dense = backend.attend(dq, dk, dv, AttentionSpec.dense(), stream);
                stream.synchronize();
                assertEquals(scope, dense.buffer().scope(), "the output belongs to q's scope");
                assertClose(expectedDense, dense.download(), name(backend) + " tile-order dense");
            }
        }
    }

    @Test
    void rasterDeviceTensorsAreReorderedOnTheDevice() {
        Random rnd = new Random(43);
        StaCase c = new StaCase(new Shape3(4, 11, 17), new Shape3(2, 4, 8), 9, 2, 64, true, new Window(1, 3, 1));
        TokenLayout layout = c.layout();
        for (GpuBackend backend : backends) {
            DType dtype = backend.hostDType();
            FloatTensor q = rounded(rnd, dtype, c.shape()), k = rounded(rnd, dtype, c.shape()),
                    v = rounded(rnd, dtype, c.shape());
            FloatTensor expected = ReferenceAttention.sta(q, k, v, layout, c.windowsPerHead(), 0.2);
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                DeviceTensor dq = DeviceTensor.upload(scope, q, dtype), dk = DeviceTensor.upload(scope, k, dtype),
                        dv = DeviceTensor.upload(scope, v, dtype);
                context.synchronize();
                DeviceTensor out = scope.allocateTensor(dtype, c.shape());
                out.buffer().fillAsync((byte) 0xFF, stream);
                backend.attendRaster(dq, dk, dv, out, c.spec(), 0.2f, stream);
                assertClose(expected, out.download(), name(backend) + " raster device STA " + c);

                DeviceTensor allocated = backend.attendRaster(dq, dk, dv, c.spec(), stream);
                FloatTensor defaultScale = ReferenceAttention.sta(q, k, v, layout, c.windowsPerHead(), 1 / Math.sqrt(c.d));
                assertClose(defaultScale, allocated.download(), name(backend) + " raster device STA, default scale");

                DeviceTensor tiles = backend.toTileOrder(dq, layout, stream);
                DeviceTensor back = backend.toRaster(tiles, layout, stream);
                stream.synchronize();
                assertArrayEquals(TokenPermutation.toTileOrder(q, layout).data(), tiles.download().data(),
                        "toTileOrder moves whole rows exactly");
                assertArrayEquals(q.data(), back.download().data(), "toRaster undoes toTileOrder");
            }
        }
    }

    @Test
    void vsaOnDeviceTensorsIsRefusedNamingTheEntryPoints() {
        TileGrid grid = new TileGrid(new Shape3(4, 8, 8), new Shape3(2, 4, 4));
        GpuBackend backend = backends.getFirst();
        try (DeviceScope scope = context.openScope()) {
            DeviceTensor d = scope.allocateTensor(DType.BF16, 1, 1, 256, 64);
            UnsupportedOperationException device = assertThrows(UnsupportedOperationException.class,
                    () -> backend.attend(d, d, d, AttentionSpec.Vsa.topK(grid, 2), context.defaultStream()));
            assertTrue(device.getMessage().contains("VsaKernels") && device.getMessage().contains("Attention"),
                    device.getMessage());
        }
    }

    @Test
    void badInputsAreRejectedNamingTheProblem() {
        GpuBackend backend = backends.getFirst();
        TokenLayout layout = TokenLayout.of(new Shape3(4, 8, 8), new Shape3(2, 4, 4), 0);
        int s = layout.sequenceLength();
        AttentionSpec.Sta sta = AttentionSpec.Sta.of(layout, new Window(1, 1, 1));
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor q = scope.allocateTensor(DType.BF16, 1, 2, s, 64);
            DeviceTensor k = scope.allocateTensor(DType.BF16, 1, 2, s, 64);
            DeviceTensor v = scope.allocateTensor(DType.BF16, 1, 2, s, 64);
            DeviceTensor o = scope.allocateTensor(DType.BF16, 1, 2, s, 64);
            DeviceTensor f32 = scope.allocateTensor(DType.F32, 1, 2, s, 64);
            DeviceTensor f16 = scope.allocateTensor(DType.F16, 1, 2, s, 64);
            DeviceTensor shorter = scope.allocateTensor(DType.BF16, 1, 2, s - 1, 64);
            DeviceTensor d32 = scope.allocateTensor(DType.BF16, 1, 2, s, 32);
            DeviceTensor rank3 = scope.allocateTensor(DType.BF16, 2, s, 64);
            assertMessage(() -> backend.attend(f32, f32, f32, sta, stream), "BF16 or F16");
            assertMessage(() -> backend.attend(q, k, f16, o, sta, 0.1f, stream), "element type");
            assertMessage(() -> backend.attend(q, k, shorter, o, sta, 0.1f, stream), "one shape");
            assertMessage(() -> backend.attend(shorter, shorter, shorter, sta, stream), "sequence length");
            assertMessage(() -> backend.attend(d32, d32, d32, AttentionSpec.dense(), stream), "head dim");
            assertMessage(() -> backend.attend(rank3, rank3, rank3, AttentionSpec.dense(), stream), "rank 4");
            assertMessage(() -> backend.attend(q, k, v, o, sta, -1f, stream), "scale");
            assertMessage(() -> backend.attend(q, k, v, q, sta, 0.1f, stream), "overlaps");
            assertMessage(() -> backend.attend(q, k, v, null, stream), "spec");
            assertMessage(() -> backend.attend(q, k, v, AttentionSpec.Sta.perHead(layout, new Window(1, 1, 1)), stream),
                    "per-head windows");
            assertMessage(() -> backend.attend(q, k, v, AttentionSpec.Sta.of(layout, new Window(3, 1, 1)), stream),
                    "head 0");
            assertMessage(() -> backend.attendRaster(q, k, shorter, sta, stream), "one shape");
            assertMessage(() -> backend.toTileOrder(shorter, layout, stream), "S = " + s);
        }
        Random rnd = new Random(45);
        FloatTensor h32 = gaussian(rnd, 1, 1, 64, 32);
        assertMessage(() -> new Attention(backend).attend(h32, h32, h32, AttentionSpec.dense()), "head dim");
        assertMessage(() -> new GpuBackend(context, DType.F32, TileAttentionKernel.Path.AUTO), "BF16 or F16");
    }

    private static void assertMessage(Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should mention " + fragment);
    }

    @Test
    void closingFreesTheCachedPlansAndRefusesFurtherWork() {
        Random rnd = new Random(46);
        FloatTensor q = gaussian(rnd, 1, 2, 300, 64);
        // Round 0 warms the kernels and the driver's pools for small allocations; round 1 is measured.
        for (int round = 0; round < 2; round++) {
            long free = context.memoryInfo().freeBytes();
            GpuBackend backend = new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.AUTO);
            Attention attention = new Attention(backend);
            for (int text = 0; text < 3; text++) {
                TokenLayout layout = TokenLayout.of(new Shape3(3, 10, 10), new Shape3(1, 4, 4), 3 + text);
                FloatTensor x = gaussian(rnd, 1, 2, layout.sequenceLength(), 64);
                attention.attend(x, x, x, AttentionSpec.Sta.of(layout, new Window(3, 1, 3)));
            }
            assertEquals(3, backend.cachedPlans());
            backend.close();
            if (round == 1) {
                assertEquals(free, context.memoryInfo().freeBytes(), "closing frees every cached plan");
            }
            assertThrows(IllegalStateException.class, () -> attention.attend(q, q, q, AttentionSpec.dense()));
        }
    }

    @Test
    void thePlanCacheStaysBoundedAndReuploadsEvictedPlans() {
        Random rnd = new Random(47);
        try (GpuBackend backend = new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.AUTO)) {
            Attention attention = new Attention(backend);
            List<FloatTensor[]> inputs = new ArrayList<>();
            List<TokenLayout> layouts = new ArrayList<>();
            for (int text = 0; text < PlanCache.CAPACITY + 3; text++) {
                TokenLayout layout = TokenLayout.of(new Shape3(2, 4, 8), new Shape3(1, 4, 4), text);
                FloatTensor[] x = {gaussian(rnd, 1, 1, layout.sequenceLength(), 64),
                    gaussian(rnd, 1, 1, layout.sequenceLength(), 64), gaussian(rnd, 1, 1, layout.sequenceLength(), 64)};
                attention.attend(x[0], x[1], x[2], AttentionSpec.Sta.of(layout, new Window(1, 1, 1)));
                layouts.add(layout);
                inputs.add(x);
            }
            assertEquals(PlanCache.CAPACITY, backend.cachedPlans());
            for (int i : new int[]{0, 1, layouts.size() - 1}) {
                FloatTensor[] x = inputs.get(i);
                Window[] w = {new Window(1, 1, 1)};
                assertClose(ReferenceAttention.sta(x[0], x[1], x[2], layouts.get(i), w, 1 / Math.sqrt(64)),
                        attention.attend(x[0], x[1], x[2], AttentionSpec.Sta.of(layouts.get(i), w[0])),
                        "layout with " + layouts.get(i).textLength() + " text tokens after eviction");
            }
        }
    }

    @Test
    @Tag("cuda-error")
    void outOfMemoryIsClearAndNothingLeaks() {
        GpuBackend backend = backends.getFirst();
        TokenLayout layout = TokenLayout.of(new Shape3(30, 48, 80), new Shape3(6, 8, 8), 0);
        long rowBytes = 2L * layout.sequenceLength() * 128;
        // Input and output take half of the free memory; the four tile-order temporaries cannot fit beside them.
        // Nothing is written to them: the call fails while allocating, before any launch.
        int heads = (int) (context.memoryInfo().freeBytes() / 4 / rowBytes);
        try (DeviceScope scope = context.openScope()) {
            DeviceTensor x = scope.allocateTensor(DType.BF16, 1, heads, layout.sequenceLength(), 128);
            DeviceTensor out = scope.allocateTensor(DType.BF16, 1, heads, layout.sequenceLength(), 128);
            long free = context.memoryInfo().freeBytes();
            AttentionSpec.Sta spec = AttentionSpec.Sta.of(layout, new Window(3, 3, 3));
            CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class,
                    () -> backend.attendRaster(x, x, x, out, spec, 0.1f, context.defaultStream()));
            assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
            assertTrue(e.getMessage().contains("cannot allocate") && e.getMessage().contains("free of"), e.getMessage());
            assertEquals(free, context.memoryInfo().freeBytes(), "the failed call freed its temporaries");
        }
        Random rnd = new Random(48);
        FloatTensor q = gaussian(rnd, 1, 2, 500, 128), k = gaussian(rnd, 1, 2, 500, 128), v = gaussian(rnd, 1, 2, 500, 128);
        assertClose(ReferenceAttention.dense(q, k, v, 1 / Math.sqrt(128)),
                new Attention(backend).attend(q, k, v, AttentionSpec.dense()), "the backend works after running out of memory");
    }
}
