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
import tileattn.cpu.CpuAttention;
import tileattn.cpu.TokenPermutation;
import tileattn.cuda.CudaContext;
import tileattn.cuda.GpuTests;
import tileattn.kernels.CoarseTies;
import tileattn.kernels.TileAttentionKernel;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;

/**
 * {@link GpuBackend}'s VSA forward on host tensors and its training tapes (dense, STA with 0, 1 and 256 text tokens,
 * VSA with and without a gate) through the public raster-order API, against the CPU backend (fp32,
 * CpuAttention / CpuAttentionBackward) on the same inputs rounded to the GPU's type; and that tapes free their
 * device memory. VSA inputs are Gaussian tokens around well separated tile centres, redrawn while some query tile's
 * k-th and (k+1)-th coarse scores lie close, so that both sides select the same tiles (a different tile changes the
 * fine output far beyond the tolerance). bf16/fp16 operands and bf16 gradients put the relative L2 error near 3e-3;
 * 1e-2 is the bound.
 */
@Tag("gpu")
class GpuTrainingGpuTest {

    private static final double TOLERANCE = 1e-2;

    private static CudaContext context;
    private static final List<GpuBackend> backends = new ArrayList<>();

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        backends.add(new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.PORTABLE));
        backends.add(new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.AUTO));
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

    // ------------------------------------------------------------------------------------------------ VSA forward

    private record VsaCase(Shape3 video, Shape3 tile, int batch, int heads, int d, boolean gate, int topK) {
        TileGrid grid() {
            return new TileGrid(video, tile);
        }

        int[] shape() {
            return new int[]{batch, heads, grid().videoTokens(), d};
        }

        AttentionSpec.Vsa spec(FloatTensor gateTensor) {
            AttentionSpec.Vsa spec = AttentionSpec.Vsa.topK(grid(), topK);
            return gateTensor == null ? spec : spec.withGate(gateTensor);
        }

        @Override
        public String toString() {
            return "VSA video " + video + " tile " + tile + " B=" + batch + " heads=" + heads + " d=" + d + " k=" + topK
                    + (gate ? " gate" : "");
        }
    }

    private static final List<VsaCase> VSA_CASES = List.of(
            // partial tiles in every dimension (2..24 tokens), batch 2, gate
            new VsaCase(new Shape3(5, 6, 10), new Shape3(2, 3, 4), 2, 2, 64, true, 5),
            // 4x4x4 tiles with partial edges, d = 128, no gate
            new VsaCase(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 1, 2, 128, false, 7),
            // every tile selected: the fine branch is dense attention
            new VsaCase(new Shape3(4, 8, 8), new Shape3(4, 4, 4), 1, 1, 64, true, 4));

    /** Raster-order q, k, v, dOut (and gate) rounded to {@code dtype}, with no near tie at the k-th coarse score. */
    private record VsaInputs(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, FloatTensor dOut) {
    }

    private static VsaInputs vsaInputs(VsaCase c, DType dtype, Random rnd) {
        TileGrid grid = c.grid();
        int[] shape = c.shape();
        float scale = CpuAttention.defaultScale(c.d);
        for (int attempt = 0; attempt < 50; attempt++) {
            FloatTensor q = tileCorrelated(rnd, grid, shape, dtype), k = tileCorrelated(rnd, grid, shape, dtype);
            if (!CoarseTies.nearTie(q, k, grid, c.topK, scale, 1e-3)) {
                return new VsaInputs(TokenPermutation.toRaster(q, grid), TokenPermutation.toRaster(k, grid),
                        rounded(rnd, dtype, shape), c.gate ? rounded(rnd, dtype, shape) : null, rounded(rnd, dtype, shape));
            }
        }
        throw new AssertionError("no input without near-tied coarse scores for " + c);
    }

    @Test
    void vsaForwardOnRasterHostTensorsMatchesTheCpu() {
        Random rnd = new Random(61);
        for (VsaCase c : VSA_CASES) {
            for (GpuBackend backend : backends) {
                VsaInputs in = vsaInputs(c, backend.hostDType(), rnd);
                AttentionSpec.Vsa spec = c.spec(in.gate);
                FloatTensor expected = Attention.cpu().attend(in.q, in.k, in.v, spec);
                assertClose(expected, new Attention(backend).attend(in.q, in.k, in.v, spec), name(backend) + " " + c);
                // the tile-order entry point, without the device reordering
                TileGrid grid = c.grid();
                FloatTensor tiles = backend.vsa(TokenPermutation.toTileOrder(in.q, grid),
                        TokenPermutation.toTileOrder(in.k, grid), TokenPermutation.toTileOrder(in.v, grid),
                        in.gate == null ? null : TokenPermutation.toTileOrder(in.gate, grid), grid, c.topK,
                        CpuAttention.defaultScale(c.d));
                assertClose(expected, TokenPermutation.toRaster(tiles, grid), name(backend) + " tile order " + c);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ training

    @Test
    void vsaTrainingMatchesTheCpuBackward() {
        Random rnd = new Random(62);
        for (VsaCase c : VSA_CASES) {
            for (GpuBackend backend : backends) {
                VsaInputs in = vsaInputs(c, backend.hostDType(), rnd);
                checkTraining(backend, in.q, in.k, in.v, in.dOut, c.spec(in.gate), name(backend) + " " + c);
            }
        }
    }

    @Test
    void denseTrainingMatchesTheCpuBackward() {
        Random rnd = new Random(63);
        int[][] shapes = {{1, 2, 77, 64}, {2, 1, 300, 128}};
        for (int[] shape : shapes) {
            for (GpuBackend backend : backends) {
                DType t = backend.hostDType();
                checkTraining(backend, rounded(rnd, t, shape), rounded(rnd, t, shape), rounded(rnd, t, shape),
                        rounded(rnd, t, shape), AttentionSpec.dense(), name(backend) + " dense " + Arrays.toString(shape));
            }
        }
    }

    @Test
    void staTrainingWithTextMatchesTheCpuBackward() {
        Random rnd = new Random(64);
        record StaCase(TokenLayout layout, int d, AttentionSpec.Sta spec, int heads) {
        }
        TokenLayout none = TokenLayout.of(new Shape3(5, 9, 11), new Shape3(2, 4, 4), 0);
        TokenLayout one = TokenLayout.of(new Shape3(7, 10, 9), new Shape3(4, 4, 4), 1);
        TokenLayout many = TokenLayout.of(new Shape3(3, 12, 20), new Shape3(2, 8, 8), 256);
        List<StaCase> cases = List.of(
                // partial tiles on every axis, per-head windows including the whole grid
                new StaCase(none, 64, AttentionSpec.Sta.perHead(none, new Window(3, 3, 3), new Window(1, 1, 1),
                        new Window(3, 1, 3)), 3),
                // one text token, a window clamped at the edges, shared by both heads
                new StaCase(one, 128, AttentionSpec.Sta.of(one, new Window(1, 3, 3)), 2),
                // 256 text tokens, more than the video's partial last tile
                new StaCase(many, 64, AttentionSpec.Sta.perHead(many, new Window(1, 1, 1), new Window(2, 2, 3)), 2));
        for (StaCase c : cases) {
            int[] shape = {1, c.heads, c.layout.sequenceLength(), c.d};
            for (GpuBackend backend : backends) {
                DType t = backend.hostDType();
                checkTraining(backend, rounded(rnd, t, shape), rounded(rnd, t, shape), rounded(rnd, t, shape),
                        rounded(rnd, t, shape), c.spec, name(backend) + " STA L=" + c.layout.textLength() + " "
                                + c.layout.grid());
            }
        }
    }

    /**
     * The GPU tape's output and gradients against the CPU tape's; the backward twice (the contract allows it, and
     * the second must equal the first); after close, backward throws while the output stays readable.
     */
    private static void checkTraining(GpuBackend backend, FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor dOut,
                                      AttentionSpec spec, String what) {
        AttentionGradients expected;
        FloatTensor expectedOut;
        try (AttentionTape cpu = Attention.cpu().forwardForTraining(q, k, v, spec)) {
            expectedOut = cpu.output();
            expected = cpu.backward(dOut);
        }
        AttentionTape tape = new Attention(backend).forwardForTraining(q, k, v, spec);
        try (tape) {
            assertClose(expectedOut, tape.output(), what + " out");
            AttentionGradients g = tape.backward(dOut);
            assertClose(expected.dq(), g.dq(), what + " dq");
            assertClose(expected.dk(), g.dk(), what + " dk");
            assertClose(expected.dv(), g.dv(), what + " dv");
            assertEquals(expected.dgate() != null, g.dgate() != null, what + " dgate present");
            if (g.dgate() != null) {
                assertClose(expected.dgate(), g.dgate(), what + " dgate");
            }
            AttentionGradients again = tape.backward(dOut);
            assertArrayEquals(g.dq().data(), again.dq().data(), what + ": a second backward gives the same dq");
            assertArrayEquals(g.dk().data(), again.dk().data(), what + ": a second backward gives the same dk");
        }
        assertThrows(IllegalStateException.class, () -> tape.backward(dOut), what + ": backward after close");
        assertNotNull(tape.output());
    }

    // ------------------------------------------------------------------------------------------------ memory

    @Test
    void aThousandTrainingStepsLeaveTheDeviceMemoryWhereItWas() {
        Random rnd = new Random(65);
        TokenLayout layout = TokenLayout.of(new Shape3(2, 8, 8), new Shape3(2, 4, 4), 3);
        TileGrid grid = new TileGrid(new Shape3(2, 8, 8), new Shape3(2, 4, 4));
        int[] staShape = {1, 2, layout.sequenceLength(), 64};
        int[] vsaShape = {1, 2, grid.videoTokens(), 64};
        FloatTensor[] sta = {rounded(rnd, DType.BF16, staShape), rounded(rnd, DType.BF16, staShape),
            rounded(rnd, DType.BF16, staShape), rounded(rnd, DType.BF16, staShape)};
        FloatTensor[] vsa = {rounded(rnd, DType.BF16, vsaShape), rounded(rnd, DType.BF16, vsaShape),
            rounded(rnd, DType.BF16, vsaShape), rounded(rnd, DType.BF16, vsaShape), rounded(rnd, DType.BF16, vsaShape)};
        AttentionSpec[] specs = {AttentionSpec.dense(), AttentionSpec.Sta.of(layout, new Window(1, 1, 1)),
            AttentionSpec.Vsa.topK(grid, 2).withGate(vsa[3])};
        GpuBackend backend = backends.get(1);
        Attention attention = new Attention(backend);
        // The first cycles load the kernels and warm the driver's pools for small allocations; then measure.
        for (int i = 0; i < 6; i++) {
            step(attention, specs[i % 3], sta, vsa);
        }
        long free = context.memoryInfo().freeBytes();
        for (int i = 0; i < 1000; i++) {
            step(attention, specs[i % 3], sta, vsa);
        }
        assertEquals(0, backend.openTapes(), "every closed tape left the backend's list");
        assertEquals(free, context.memoryInfo().freeBytes(), "1000 forward+backward+close cycles leak no device memory");
    }

    private static void step(Attention attention, AttentionSpec spec, FloatTensor[] sta, FloatTensor[] vsa) {
        FloatTensor[] in = spec instanceof AttentionSpec.Vsa ? new FloatTensor[]{vsa[0], vsa[1], vsa[2], vsa[4]} : sta;
        try (AttentionTape tape = attention.forwardForTraining(in[0], in[1], in[2], spec)) {
            tape.backward(in[3]);
        }
    }

    @Test
    void closingTheBackendClosesItsOpenTapes() {
        Random rnd = new Random(66);
        FloatTensor x = rounded(rnd, DType.BF16, 1, 2, 100, 64);
        try (AttentionTape warm = new Attention(backends.get(1)).forwardForTraining(x, x, x, AttentionSpec.dense())) {
            warm.backward(x);  // loads the kernels before the memory is measured
        }
        long free = context.memoryInfo().freeBytes();
        GpuBackend backend = new GpuBackend(context, DType.BF16, TileAttentionKernel.Path.AUTO);
        AttentionTape first = new Attention(backend).forwardForTraining(x, x, x, AttentionSpec.dense());
        AttentionTape second = new Attention(backend).forwardForTraining(x, x, x, AttentionSpec.dense());
        first.backward(x);
        assertEquals(2, backend.openTapes());
        second.close();
        assertEquals(1, backend.openTapes(), "a closed tape leaves the backend's list");
        backend.close();
        assertEquals(0, backend.openTapes());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> first.backward(x));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        first.close();  // closing twice does nothing
        assertEquals(free, context.memoryInfo().freeBytes(), "the backend's close freed the open tape");
        assertThrows(IllegalStateException.class,
                () -> new Attention(backend).forwardForTraining(x, x, x, AttentionSpec.dense()));
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private static FloatTensor rounded(Random rnd, DType dtype, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = dtype.decodeHalf(dtype.encodeHalf((float) rnd.nextGaussian()));
        }
        return t;
    }

    /** Tile order: Gaussian tokens around a Gaussian centre per tile, so that pooled tiles differ clearly. */
    private static FloatTensor tileCorrelated(Random rnd, TileGrid grid, int[] shape, DType dtype) {
        int planes = shape[0] * shape[1], s = shape[2], d = shape[3], tiles = grid.tileCount();
        int[] starts = grid.tileStarts();
        FloatTensor x = FloatTensor.zeros(shape);
        for (int p = 0; p < planes; p++) {
            for (int t = 0; t < tiles; t++) {
                float[] centre = new float[d];
                for (int i = 0; i < d; i++) {
                    centre[i] = (float) (2 * rnd.nextGaussian());
                }
                for (int r = starts[t]; r < starts[t + 1]; r++) {
                    for (int i = 0; i < d; i++) {
                        x.data()[(p * s + r) * d + i] = dtype.decodeHalf(dtype.encodeHalf(centre[i]
                                + (float) rnd.nextGaussian()));
                    }
                }
            }
        }
        return x;
    }

    /** Relative L2 error below {@link #TOLERANCE}, printed for the device log; fails on any non-finite element. */
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
        System.out.printf("GpuTrainingGpuTest %-70s rel L2 %.2e%n", what, err);
        assertTrue(err < TOLERANCE, what + ": relative L2 error " + err);
    }
}
