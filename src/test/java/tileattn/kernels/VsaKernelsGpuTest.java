package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.CpuAttentionBackward;
import tileattn.cpu.Gradients;
import tileattn.cpu.VsaForward;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.TileLists;
import tileattn.tensor.FloatTensor;

/**
 * VSA on the GPU against CpuAttention.vsa (fp32, tile order) on fresh random inputs rounded to the tensor type,
 * every output and kept tensor poisoned (NaN) first. The top-k choice is compared exactly, so inputs must not
 * leave it to rounding: either Gaussian tokens around well separated tile centres, redrawn while some k-th and
 * (k+1)-th coarse scores lie close, or "exact" inputs (multiples of 1/4 in [-1, 1], tiles whose real token
 * counts are powers of two, d = 64) on which every pooled value and coarse score is computed without rounding on
 * both sides, so that even the many exact ties must be broken identically (towards the lower tile).
 */
@Tag("gpu")
class VsaKernelsGpuTest {

    private static final double TOLERANCE = 1e-2;
    private static final double F32_TOLERANCE = 1e-4;

    private static CudaContext context;
    private static KernelLibrary library;
    /** Every kernel path this device runs, with the query-block rows worth checking on it. */
    private static final List<Variant> VARIANTS = new ArrayList<>();

    private record Variant(VsaKernels kernels, int blockRows) {
        @Override
        public String toString() {
            return kernels.path() + "/BM" + blockRows;
        }
    }

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        library = KernelLibrary.of(context);
        // The portable variant also takes the coarse backward's 32-tile blocks, which devices with less shared memory
        // than the 64-tile blocks need, so that one run checks both.
        VARIANTS.add(new Variant(new VsaKernels(library, TileAttentionKernel.Path.PORTABLE, 32), 128));
        if (context.device().computeCapabilityNumber() == 90) {
            VsaKernels hopper = new VsaKernels(library, TileAttentionKernel.Path.HOPPER);
            VARIANTS.add(new Variant(hopper, 64));
            VARIANTS.add(new Variant(hopper, 128));
        }
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    private record Case(Shape3 video, Shape3 tile, int batch, int heads, int d, DType dtype, boolean gate,
                        boolean exact, int... topKs) {
        TileGrid grid() {
            return new TileGrid(video, tile);
        }

        int[] shape() {
            return new int[]{batch, heads, grid().videoTokens(), d};
        }

        @Override
        public String toString() {
            return "video " + video + " tile " + tile + " B=" + batch + " heads=" + heads + " d=" + d + " " + dtype
                    + (gate ? " gate" : "") + (exact ? " exact" : "");
        }
    }

    private record Inputs(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate) {
    }

    // ------------------------------------------------------------------------------------------------ forward

    @Test
    void forwardMatchesCpuVsaOnPartialTiles() {
        List<Case> cases = List.of(
                // partial tiles in every dimension (2..24 tokens), batch 2, every k from 1 to all 18 tiles
                new Case(new Shape3(5, 6, 10), new Shape3(2, 3, 4), 2, 2, 64, DType.BF16, true, false,
                        1, 2, 5, 9, 17, 18),
                // 4x4x4 tiles with partial edges (27 tiles of 4..64 tokens), d = 128, fp16, no gate
                new Case(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 1, 3, 128, DType.F16, false, false, 1, 7, 27),
                // full 4x4x4 tiles: the 64-token blocks the Wan benchmark uses
                new Case(new Shape3(8, 8, 12), new Shape3(4, 4, 4), 1, 2, 128, DType.BF16, true, false, 3),
                // a partial tile of 48 tokens along T and of 16 along W, batch 2
                new Case(new Shape3(7, 8, 9), new Shape3(4, 4, 4), 2, 2, 128, DType.BF16, true, false, 3, 12));
        for (Case c : cases) {
            for (int topK : c.topKs) {
                checkForward(c, topK, new Random(31L * c.hashCode() + topK));
            }
        }
    }

    @Test
    void forwardBreaksExactTiesLikeTheCpuOnManyTiles() {
        // 8x8x9 = 576 tiles of 1, 2, 4 or 8 tokens: several coarse blocks and staged chunks, thousands of exact ties;
        // k = 540 makes lists longer than the 512 ranges the Hopper forward stages in shared memory
        Case c = new Case(new Shape3(15, 16, 17), new Shape3(2, 2, 2), 1, 2, 64, DType.BF16, true, true, 72, 540);
        checkForward(c, 72, new Random(8));
        checkForward(c, 540, new Random(540));
        Case image = new Case(new Shape3(1, 9, 11), new Shape3(1, 2, 2), 2, 1, 64, DType.F16, false, true, 1, 30);
        for (int topK : image.topKs) {
            checkForward(image, topK, new Random(9 + topK));
        }
    }

    /**
     * Partial tiles of 16, 32 or 48 tokens packed into shared 64-row blocks on the Hopper path (PackedTiles): pairs
     * of 32-token tiles, a 32-token tile with two of 16, three of 16 (a warp idle), and, with 1x4x4 tiles, 576 tiles
     * of 16 tokens four to a block whose union lists outgrow the 512 ranges the kernel stages in shared memory (exact
     * inputs: among 576 tiles, random ones always tie near the k-th score). k = 1 leaves most warps' keys out of most
     * blocks, including a list's first block.
     */
    @Test
    void forwardPacksPartialTilesLikeTheCpu() {
        List<Case> cases = List.of(
                new Case(new Shape3(5, 6, 20), new Shape3(4, 4, 4), 2, 2, 128, DType.BF16, true, false, 1, 4, 11, 20),
                new Case(new Shape3(4, 24, 96), new Shape3(1, 4, 4), 1, 1, 64, DType.F16, false, true, 300));
        for (Case c : cases) {
            if (context.device().computeCapabilityNumber() == 90) {
                try (DeviceScope scope = context.openScope()) {
                    VsaPlan plan = VARIANTS.get(1).kernels.plan(c.grid(), c.batch, c.heads, c.topKs[0], 64, scope);
                    assertTrue(plan.groupCount() > 0, c + ": no packed blocks in " + plan);
                }
            }
            for (int topK : c.topKs) {
                checkForward(c, topK, new Random(17L * c.hashCode() + topK));
            }
        }
    }

    private static void checkForward(Case c, int topK, Random rnd) {
        TileGrid grid = c.grid();
        float scale = CpuAttention.defaultScale(c.d);
        Inputs in = draw(c, topK, rnd, scale);
        VsaForward expected = CpuAttention.vsa(in.q, in.k, in.v, in.gate, grid, topK, scale);
        for (Variant variant : VARIANTS) {
            String what = variant + " " + c + " k=" + topK;
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                Device dev = forward(variant, c, topK, in, scale, true, scope, stream);
                assertSelectionEquals(expected.selection(), dev.ws.downloadSelection(), grid.tileCount(), what);
                assertClose(dev.ws.pooledQ().download(), expected.pooledQ(), F32_TOLERANCE, what + " pooled q");
                assertClose(dev.ws.pooledK().download(), expected.pooledK(), F32_TOLERANCE, what + " pooled k");
                assertClose(dev.ws.pooledV().download(), expected.pooledV(), F32_TOLERANCE, what + " pooled v");
                assertClose(dev.ws.coarse().download(), expected.coarseTiles(), F32_TOLERANCE, what + " coarse");
                assertClose(dev.ws.coarseLse().download(), expected.coarseLse(), F32_TOLERANCE, what + " coarse lse");
                assertClose(dev.ws.fine().download(), expected.fine(), TOLERANCE, what + " fine");
                assertClose(dev.ws.fineLse().download(), expected.fineLse(), F32_TOLERANCE, what + " fine lse");
                assertClose(dev.out.download(), expected.out(), TOLERANCE, what + " out");
            }
        }
    }

    /**
     * The forward with the coarse branch gated off, which the DiT runs: the CPU's selection and fine output; written
     * as token rows [B, S, heads·d], the same values bit for bit.
     */
    @Test
    void forwardFineSelectsAndAttendsLikeTheFullForward() {
        List<Case> cases = List.of(
                new Case(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 2, 2, 128, DType.BF16, false, false, 5),
                new Case(new Shape3(15, 16, 17), new Shape3(2, 2, 2), 1, 1, 64, DType.F16, false, true, 40));
        for (Case c : cases) {
            int topK = c.topKs[0];
            TileGrid grid = c.grid();
            float scale = CpuAttention.defaultScale(c.d);
            Inputs in = draw(c, topK, new Random(5L * c.hashCode()), scale);
            VsaForward expected = CpuAttention.vsa(in.q, in.k, in.v, null, grid, topK, scale);
            for (Variant variant : VARIANTS) {
                String what = variant + " " + c + " k=" + topK + " forwardFine";
                try (DeviceScope scope = context.openScope()) {
                    CudaStream stream = scope.createStream();
                    VsaPlan plan = variant.kernels.plan(grid, c.batch, c.heads, topK, variant.blockRows, scope);
                    VsaWorkspace ws = VsaWorkspace.allocate(plan, c.dtype, c.d, false, scope);
                    ws.fine.buffer().fillAsync((byte) 0xFF, stream);
                    ws.selection.fillAsync((byte) 0xFF, stream);
                    DeviceTensor q = DeviceTensor.upload(scope, in.q, c.dtype), k = DeviceTensor.upload(scope, in.k, c.dtype),
                            v = DeviceTensor.upload(scope, in.v, c.dtype);
                    DeviceTensor fine = variant.kernels.forwardFine(q, k, v, ws, scale, stream);
                    stream.synchronize();
                    assertSelectionEquals(expected.selection(), ws.downloadSelection(), grid.tileCount(), what);
                    FloatTensor planes = fine.download();
                    assertClose(planes, expected.fine(), TOLERANCE, what + " fine");
                    int seq = grid.videoTokens();
                    DeviceTensor rows = scope.allocateTensor(c.dtype, c.batch, seq, c.heads * c.d);
                    rows.buffer().fillAsync((byte) 0xFF, stream);   // on the stream: it does not wait for the legacy one
                    variant.kernels.forwardFine(q, k, v, rows, ws, scale, stream);
                    stream.synchronize();   // the download runs on the legacy stream, which does not wait for this one
                    TokenRows.assertSameAsPlanes(planes.data(), rows.download().data(), c.batch, c.heads, seq, c.d,
                            what);
                }
            }
        }
    }

    /**
     * The selection alone (scores into scratch, then a warp's top-k per query tile) against the coarse kernel of the
     * full forward, which computes the scores in the same arithmetic: the same selection, KV ranges and transpose
     * bytes bit for bit, on Gaussian inputs whatever their near ties. Over 27 tiles, Wan-2.1's 624, and 1,664 (rows
     * too long for registers); then again in passes of one plane each.
     */
    @Test
    void selectionAloneMatchesTheCoarseKernelBitForBit() {
        record Shape(Shape3 video, Shape3 tile, int batch, int heads, int d, int topK) {
        }
        VsaKernels vsa = VARIANTS.getFirst().kernels;
        Random rnd = new Random(41);
        for (Shape sh : List.of(new Shape(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 2, 3, 128, 5),
                new Shape(new Shape3(21, 30, 52), new Shape3(4, 4, 4), 1, 2, 128, 78),
                new Shape(new Shape3(8, 16, 52), new Shape3(1, 1, 4), 1, 2, 64, 100))) {
            TileGrid grid = new TileGrid(sh.video, sh.tile);
            int tiles = grid.tileCount(), planes = sh.batch * sh.heads;
            int[] shape = {sh.batch, sh.heads, grid.videoTokens(), sh.d};
            float scale = CpuAttention.defaultScale(sh.d);
            String what = sh.toString();
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                DeviceTensor q = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, shape), DType.BF16);
                DeviceTensor k = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, shape), DType.BF16);
                DeviceTensor v = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, shape), DType.BF16);
                VsaPlan plan = vsa.plan(grid, sh.batch, sh.heads, sh.topK, VARIANTS.getFirst().blockRows, scope);
                VsaWorkspace ws = VsaWorkspace.allocate(plan, DType.BF16, sh.d, true, scope);
                vsa.pool(q, k, v, ws, true, stream);
                vsa.coarse(ws, scale, true, stream);
                stream.synchronize();
                Selection fused = Selection.of(ws);
                ws.selection.fill((byte) 0xFF);
                ws.ranges.fill((byte) 0xFF);
                vsa.coarse(ws, scale, false, stream);
                stream.synchronize();
                fused.assertSame(Selection.of(ws), what);

                VsaWorkspace onePlane = VsaWorkspace.allocate(plan, DType.BF16, sh.d, false, 4L * tiles * tiles, scope);
                assertEquals(1, onePlane.scorePlanes, what);
                vsa.pool(q, k, v, onePlane, false, stream);
                onePlane.selection.fillAsync((byte) 0xFF, stream);
                onePlane.ranges.fillAsync((byte) 0xFF, stream);
                vsa.coarse(onePlane, scale, false, stream);
                stream.synchronize();
                Selection passes = Selection.of(onePlane);
                assertArrayEquals(fused.tiles, passes.tiles, what + ": selection in " + planes + " passes");
                assertArrayEquals(fused.ranges, passes.ranges, what + ": KV ranges in " + planes + " passes");
            }
        }
    }

    /** A workspace's selection, the query tiles' KV ranges and (training workspaces) transpose bytes, downloaded. */
    private record Selection(int[] tiles, int[] ranges, byte[] chosen) {
        static Selection of(VsaWorkspace ws) {
            VsaPlan plan = ws.plan();
            int entries = plan.planes() * plan.tiles() * plan.topK();  // the query tiles' lists, not the groups' after them
            int[] tiles = new int[entries], ranges = new int[2 * entries];
            ws.selection.copyToHost(tiles);
            ws.ranges.copyToHost(ranges);
            byte[] chosen = null;
            if (ws.chosen != null) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment bytes = arena.allocate(ws.chosen.bytes());
                    ws.chosen.copyToHost(bytes);
                    chosen = bytes.toArray(ValueLayout.JAVA_BYTE);
                }
            }
            return new Selection(tiles, ranges, chosen);
        }

        void assertSame(Selection other, String what) {
            assertArrayEquals(tiles, other.tiles, what + ": selection");
            assertArrayEquals(ranges, other.ranges, what + ": KV ranges");
            assertArrayEquals(chosen, other.chosen, what + ": transpose bytes");
        }
    }

    /**
     * The DiT's fused q/k/v layout with VSA pooling: the same heads as DitKernels.toHeads bit for bit, and tile means
     * bit-identical to VSA's pooling pass over them, at d = 128 (8 row groups) and d = 64 (16), with partial tiles.
     */
    @Test
    void headsWithPoolingMatchTheSeparatePasses() {
        DitKernels dit = new DitKernels(KernelLibrary.of(context));
        VsaKernels vsa = VARIANTS.getFirst().kernels;
        Random rnd = new Random(29);
        for (int[] hd : new int[][]{{3, 128}, {2, 64}}) {
            int heads = hd[0], d = hd[1], batch = 2, width = heads * d;
            TileGrid grid = new TileGrid(new Shape3(9, 10, 11), new Shape3(4, 4, 4));
            int s = grid.videoTokens();
            String what = "heads " + heads + " d " + d;
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                DeviceTensor qkv = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, batch * s, 3 * width), DType.BF16);
                DeviceTensor normQ = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 0.2, width), DType.F32);
                DeviceTensor normK = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 0.2, width), DType.F32);
                DeviceTensor cos = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, s, d / 2), DType.F32);
                DeviceTensor sin = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, s, d / 2), DType.F32);
                DeviceTensor[] separate = new DeviceTensor[3], fused = new DeviceTensor[3];
                for (int i = 0; i < 3; i++) {
                    separate[i] = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                    fused[i] = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                    fused[i].buffer().fillAsync((byte) 0xFF, stream);
                }
                VsaWorkspace ws = VsaWorkspace.allocate(vsa.plan(grid, batch, heads, 5, VARIANTS.getFirst().blockRows,
                        scope), DType.BF16, d, false, scope);
                ws.pooledQ.buffer().fillAsync((byte) 0xFF, stream);
                ws.pooledK.buffer().fillAsync((byte) 0xFF, stream);
                java.util.function.Function<DeviceTensor[], List<DitKernels.HeadsPart>> parts = out -> List.of(
                        new DitKernels.HeadsPart(qkv, 0, normQ, true, out[0]),
                        new DitKernels.HeadsPart(qkv, width, normK, true, out[1]),
                        new DitKernels.HeadsPart(qkv, 2 * width, null, false, out[2]));
                dit.toHeads(parts.apply(separate), cos, sin, s, 1e-6f, stream);
                assertTrue(dit.toHeadsPooled(parts.apply(fused), cos, sin, s, 1e-6f, ws, stream), what + ": fused kernel");
                stream.synchronize();
                float[][] fusedPools = {ws.pooledQ.download().data(), ws.pooledK.download().data()};
                for (int i = 0; i < 3; i++) {
                    assertBitIdentical(separate[i].download().data(), fused[i].download().data(), what + " part " + i);
                }
                ws.pooledQ.buffer().fillAsync((byte) 0xFF, stream);
                ws.pooledK.buffer().fillAsync((byte) 0xFF, stream);
                vsa.pool(separate[0], separate[1], separate[2], ws, false, stream);
                stream.synchronize();
                assertBitIdentical(ws.pooledQ.download().data(), fusedPools[0], what + " pooled q");
                assertBitIdentical(ws.pooledK.download().data(), fusedPools[1], what + " pooled k");
            }
        }
    }

    /**
     * The fine forward reading v straight from the v columns of a fused [B·S, 3·heads·d] projection gives the very
     * bits it gives with v laid out per head, on every kernel path, B = 2 and partial tiles.
     */
    @Test
    void vFromTokenRowsMatchesVAsPlanes() {
        DitKernels dit = new DitKernels(KernelLibrary.of(context));
        Random rnd = new Random(37);
        int heads = 3, d = 128, batch = 2, width = heads * d;
        TileGrid grid = new TileGrid(new Shape3(9, 10, 11), new Shape3(4, 4, 4));
        int s = grid.videoTokens();
        float scale = CpuAttention.defaultScale(d);
        for (Variant variant : VARIANTS) {
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                int[] shape = {batch, heads, s, d};
                DeviceTensor q = DeviceTensor.upload(scope, tileCorrelated(rnd, grid, shape, DType.BF16), DType.BF16);
                DeviceTensor k = DeviceTensor.upload(scope, tileCorrelated(rnd, grid, shape, DType.BF16), DType.BF16);
                DeviceTensor qkv = DeviceTensor.upload(scope, rounded(rnd, DType.BF16, 1, batch * s, 3 * width), DType.BF16);
                DeviceTensor vPlanes = scope.allocateTensor(DType.BF16, shape);
                dit.toHeads(qkv, 2 * width, null, null, null, vPlanes, s, 1e-6f, stream);
                VsaWorkspace ws = VsaWorkspace.allocate(variant.kernels.plan(grid, batch, heads, 6, variant.blockRows,
                        scope), DType.BF16, d, false, scope);
                DeviceTensor fromPlanes = scope.allocateTensor(DType.BF16, batch, s, width);
                DeviceTensor fromRows = scope.allocateTensor(DType.BF16, batch, s, width);
                fromPlanes.buffer().fillAsync((byte) 0xFF, stream);
                fromRows.buffer().fillAsync((byte) 0xFF, stream);
                variant.kernels.forwardFine(q, k, vPlanes, fromPlanes, ws, scale, stream);
                variant.kernels.forwardFinePooled(q, k, new TokenColumns(qkv, 2 * width), fromRows, ws, scale, stream);
                stream.synchronize();
                assertBitIdentical(fromPlanes.download().data(), fromRows.download().data(), variant + " v from rows");
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> variant.kernels
                        .forwardFinePooled(q, k, new TokenColumns(qkv, 2 * width - 4), fromRows, ws, scale, stream));
                assertTrue(e.getMessage().contains("16-byte aligned"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> variant.kernels
                        .forwardFinePooled(q, k, new TokenColumns(qkv, 2 * width + 8), fromRows, ws, scale, stream));
                assertTrue(e.getMessage().contains("must hold " + batch * s + " rows of " + width + " columns"),
                        e.getMessage());
            }
        }
    }

    private static void assertBitIdentical(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToIntBits(want[i]) != Float.floatToIntBits(got[i]) || Float.isNaN(got[i])) {
                fail(what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
            }
        }
    }

    /** Inputs whose top-k choice does not hang on rounding (see the class comment). */
    private static Inputs draw(Case c, int topK, Random rnd, float scale) {
        int[] shape = c.shape();
        TileGrid grid = c.grid();
        for (int attempt = 0; attempt < 50; attempt++) {
            Inputs in = c.exact
                    ? new Inputs(quarters(rnd, shape), quarters(rnd, shape), rounded(rnd, c.dtype, 1, shape),
                            c.gate ? rounded(rnd, c.dtype, 1, shape) : null)
                    : new Inputs(tileCorrelated(rnd, grid, shape, c.dtype), tileCorrelated(rnd, grid, shape, c.dtype),
                            rounded(rnd, c.dtype, 1, shape), c.gate ? rounded(rnd, c.dtype, 1, shape) : null);
            if (c.exact || !CoarseTies.nearTie(in.q, in.k, grid, topK, scale, 1e-3)) {
                return in;
            }
        }
        throw new AssertionError("no input without near-tied coarse scores found for " + c + " k=" + topK);
    }

    // ------------------------------------------------------------------------------------------------ backward

    @Test
    void coarseBackwardMatchesCpuVsaBackward() {
        List<Case> cases = List.of(
                new Case(new Shape3(5, 6, 10), new Shape3(2, 3, 4), 2, 2, 64, DType.F16, true, false, 5),
                new Case(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 1, 2, 128, DType.F16, false, false, 4),
                // 210 tiles: several row and column blocks of the coarse backward
                new Case(new Shape3(9, 11, 13), new Shape3(2, 2, 2), 1, 1, 64, DType.F16, true, true, 20));
        for (Case c : cases) {
            checkCoarseBackward(c, c.topKs[0], new Random(77L * c.hashCode()));
        }
    }

    private static void checkCoarseBackward(Case c, int topK, Random rnd) {
        TileGrid grid = c.grid();
        int[] shape = c.shape();
        int tiles = grid.tileCount(), planes = c.batch * c.heads, d = c.d, seq = grid.videoTokens();
        float scale = CpuAttention.defaultScale(d);
        Inputs in = draw(c, topK, rnd, scale);
        FloatTensor dOut = rounded(rnd, c.dtype, 1, shape);
        VsaForward state = CpuAttention.vsa(in.q, in.k, in.v, in.gate, grid, topK, scale);

        // The coarse branch by the CPU's own pieces: dCoarse summed over each tile, dense backward between tiles.
        int[] starts = grid.tileStarts();
        FloatTensor dCoarse = FloatTensor.zeros(c.batch, c.heads, tiles, d);
        FloatTensor dGate = in.gate == null ? null : FloatTensor.zeros(shape);
        for (int p = 0; p < planes; p++) {
            for (int t = 0; t < tiles; t++) {
                for (int r = starts[t]; r < starts[t + 1]; r++) {
                    for (int i = 0; i < d; i++) {
                        int at = (p * seq + r) * d + i;
                        float g = in.gate == null ? 1f : in.gate.data()[at];
                        dCoarse.data()[(p * tiles + t) * d + i] += dOut.data()[at] * g;
                        if (dGate != null) {
                            dGate.data()[at] = dOut.data()[at] * state.coarse().data()[at];
                        }
                    }
                }
            }
        }
        Gradients pooled = CpuAttentionBackward.dense(state.pooledQ(), state.pooledK(), state.pooledV(),
                state.coarseTiles(), state.coarseLse(), dCoarse, scale);
        FloatTensor[] shares = {perToken(pooled.dq(), starts), perToken(pooled.dk(), starts), perToken(pooled.dv(), starts)};

        for (Variant variant : VARIANTS) {
            String what = variant + " " + c + " k=" + topK;
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                Device dev = forward(variant, c, topK, in, scale, true, scope, stream);
                DeviceTensor dOutDev = DeviceTensor.upload(scope, dOut, c.dtype);
                DeviceTensor gateDev = in.gate == null ? null : DeviceTensor.upload(scope, in.gate, c.dtype);
                DeviceTensor dGateDev = in.gate == null ? null : poisoned(scope, c.dtype, shape);
                for (DeviceTensor t : new DeviceTensor[]{dev.ws.dqShare, dev.ws.dkShare, dev.ws.dvShare, dev.ws.dCoarse}) {
                    t.buffer().fill((byte) 0xFF);
                }
                variant.kernels.coarseBackward(gateDev, dOutDev, dGateDev, dev.ws, scale, stream);
                stream.synchronize();

                assertClose(dev.ws.dCoarse.download(), dCoarse, F32_TOLERANCE, what + " dCoarse");
                DeviceTensor[] sharesDev = {dev.ws.dqShare, dev.ws.dkShare, dev.ws.dvShare};
                String[] names = {"dq", "dk", "dv"};
                for (int i = 0; i < 3; i++) {
                    assertClose(sharesDev[i].download(), shares[i], 1e-3, what + " per-token share of pooled " + names[i]);
                }
                if (dGate != null) {
                    assertClose(dGateDev.download(), dGate, TOLERANCE, what + " dgate");
                }
            }
        }
    }

    @Test
    void backwardMatchesCpuVsaBackward() {
        List<Case> cases = List.of(
                // partial tiles of 2..24 tokens, batch 2, gate
                new Case(new Shape3(5, 6, 10), new Shape3(2, 3, 4), 2, 2, 64, DType.BF16, true, false, 5),
                // 4x4x4 tiles with partial edges, d = 128, fp16, no gate, and k = all tiles
                new Case(new Shape3(9, 10, 11), new Shape3(4, 4, 4), 1, 2, 128, DType.F16, false, false, 7, 27),
                // 210 tiles with exact ties; KV tiles that no query tile chose get only the coarse gradient
                new Case(new Shape3(9, 11, 13), new Shape3(2, 2, 2), 1, 1, 64, DType.BF16, true, true, 1, 20));
        for (Case c : cases) {
            for (int topK : c.topKs) {
                checkBackward(c, topK, new Random(91L * c.hashCode() + topK));
            }
        }
    }

    private static void checkBackward(Case c, int topK, Random rnd) {
        TileGrid grid = c.grid();
        int[] shape = c.shape();
        float scale = CpuAttention.defaultScale(c.d);
        Inputs in = draw(c, topK, rnd, scale);
        FloatTensor dOut = rounded(rnd, c.dtype, 1, shape);
        VsaForward state = CpuAttention.vsa(in.q, in.k, in.v, in.gate, grid, topK, scale);
        Gradients expected = CpuAttentionBackward.vsa(state, in.q, in.k, in.v, in.gate, dOut, grid, scale);
        // Both backward block sizes with every forward variant: tiles here hold 1..64 tokens.
        for (Variant variant : VARIANTS) for (int backwardRows : new int[]{64, 128}) {
            String what = variant + " backward BM" + backwardRows + " " + c + " k=" + topK;
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = scope.createStream();
                VsaPlan plan = variant.kernels.plan(grid, c.batch, c.heads, topK, variant.blockRows, backwardRows, scope);
                assertEquals(backwardRows, plan.backwardRows(), what);
                VsaWorkspace ws = VsaWorkspace.allocate(plan, c.dtype, c.d, true, scope);
                DeviceTensor q = DeviceTensor.upload(scope, in.q, c.dtype), k = DeviceTensor.upload(scope, in.k, c.dtype),
                        v = DeviceTensor.upload(scope, in.v, c.dtype), dO = DeviceTensor.upload(scope, dOut, c.dtype);
                DeviceTensor gate = in.gate == null ? null : DeviceTensor.upload(scope, in.gate, c.dtype);
                DeviceTensor out = poisoned(scope, c.dtype, shape);
                DeviceTensor dq = poisoned(scope, c.dtype, shape), dk = poisoned(scope, c.dtype, shape),
                        dv = poisoned(scope, c.dtype, shape);
                DeviceTensor dgate = in.gate == null ? null : poisoned(scope, c.dtype, shape);
                variant.kernels.forward(q, k, v, gate, out, ws, scale, stream);
                variant.kernels.backward(q, k, v, gate, dO, dq, dk, dv, dgate, ws, scale, stream);
                stream.synchronize();
                assertSelectionEquals(state.selection(), ws.downloadSelection(), grid.tileCount(), what);
                assertClose(dq.download(), expected.dq(), TOLERANCE, what + " dq");
                assertClose(dk.download(), expected.dk(), TOLERANCE, what + " dk");
                assertClose(dv.download(), expected.dv(), TOLERANCE, what + " dv");
                if (dgate != null) {
                    assertClose(dgate.download(), expected.dgate(), TOLERANCE, what + " dgate");
                }
            }
        }
    }

    /** Each tile's row of a [B, heads, tiles, d] pooled gradient divided by the tile's real tokens. */
    private static FloatTensor perToken(FloatTensor pooled, int[] starts) {
        int tiles = starts.length - 1, d = pooled.shape()[3];
        FloatTensor out = FloatTensor.zeros(pooled.shape());
        for (int i = 0; i < out.data().length; i++) {
            int t = i / d % tiles;
            out.data()[i] = pooled.data()[i] / (starts[t + 1] - starts[t]);
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------------ argument checks

    @Test
    void rejectsBadArgumentsNamingTheProblem() {
        TileGrid grid = new TileGrid(new Shape3(4, 4, 8), new Shape3(4, 4, 4));
        VsaKernels kernels = VARIANTS.get(0).kernels;
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            VsaPlan plan = kernels.plan(grid, 1, 2, 1, scope);
            VsaWorkspace ws = VsaWorkspace.allocate(plan, DType.BF16, 64, false, scope);
            DeviceTensor x = scope.allocateTensor(DType.BF16, 1, 2, 128, 64);
            DeviceTensor out = scope.allocateTensor(DType.BF16, 1, 2, 128, 64);
            assertMessage(() -> kernels.plan(grid, 1, 2, 3, scope), "topK = 3 out of range 1..2");
            assertMessage(() -> VsaWorkspace.allocate(plan, DType.BF16, 32, false, scope), "head dim");
            assertMessage(() -> VsaWorkspace.allocate(plan, DType.F32, 64, false, scope), "BF16 or F16");
            assertMessage(() -> kernels.forward(x, x, scope.allocateTensor(DType.BF16, 1, 2, 127, 64), null, out, ws, 0.1f, stream),
                    "v is [1, 2, 127, 64]");
            assertMessage(() -> kernels.forward(x, x, x, null, scope.allocateTensor(DType.F16, 1, 2, 128, 64), ws, 0.1f, stream),
                    "out is F16");
            assertMessage(() -> kernels.forward(x, x, x, null, x, ws, 0.1f, stream), "overlaps");
            assertMessage(() -> kernels.forward(x, x, x, null, out, ws, Float.NaN, stream), "scale");
            assertMessage(() -> kernels.forward(null, x, x, null, out, ws, 0.1f, stream), "q is missing");
            assertMessage(() -> kernels.coarseBackward(null, x, null, ws, 0.1f, stream), "without training");
            if (kernels.path() != TileAttentionKernel.Path.HOPPER) {
                assertMessage(() -> kernels.plan(grid, 1, 2, 1, 64, scope), "64-row query blocks need the Hopper kernel");
            }
            assertThrows(IllegalArgumentException.class, () -> VsaKernels.topKFromSparsity(1.0, 10));
        }
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private record Device(VsaWorkspace ws, DeviceTensor out) {
    }

    /** Uploads the inputs, poisons the output and every tensor the workspace keeps, runs the forward, waits. */
    private static Device forward(Variant variant, Case c, int topK, Inputs in, float scale, boolean training,
                                  DeviceScope scope, CudaStream stream) {
        VsaPlan plan = variant.kernels.plan(c.grid(), c.batch, c.heads, topK, variant.blockRows, scope);
        VsaWorkspace ws = VsaWorkspace.allocate(plan, c.dtype, c.d, training, scope);
        for (DeviceTensor t : new DeviceTensor[]{ws.pooledQ, ws.pooledK, ws.pooledV, ws.coarse, ws.coarseLse, ws.fine, ws.fineLse}) {
            t.buffer().fill((byte) 0xFF);
        }
        ws.selection.fill((byte) 0xFF);
        ws.ranges.fill((byte) 0xFF);
        if (ws.members != null) {
            ws.members.fill((byte) 0xFF);
        }
        DeviceTensor out = poisoned(scope, c.dtype, c.shape());
        DeviceTensor gate = in.gate == null ? null : DeviceTensor.upload(scope, in.gate, c.dtype);
        variant.kernels.forward(DeviceTensor.upload(scope, in.q, c.dtype), DeviceTensor.upload(scope, in.k, c.dtype),
                DeviceTensor.upload(scope, in.v, c.dtype), gate, out, ws, scale, stream);
        stream.synchronize();
        return new Device(ws, out);
    }

    private static DeviceTensor poisoned(DeviceScope scope, DType dtype, int[] shape) {
        DeviceTensor t = scope.allocateTensor(dtype, shape);
        t.buffer().fill((byte) 0xFF);
        return t;
    }

    private static void assertSelectionEquals(TileLists[] expected, TileLists[] actual, int tiles, String what) {
        assertEquals(expected.length, actual.length, what + ": planes");
        for (int p = 0; p < expected.length; p++) {
            for (int t = 0; t < tiles; t++) {
                assertArrayEquals(expected[p].of(t), actual[p].of(t), what + ": selection of plane " + p + " query tile " + t);
            }
        }
    }

    /** Gaussian values of standard deviation {@code sigma}, rounded to {@code dtype}. */
    private static FloatTensor rounded(Random rnd, DType dtype, double sigma, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = dtype.decodeHalf(dtype.encodeHalf((float) (sigma * rnd.nextGaussian())));
        }
        return t;
    }

    /** Multiples of 1/4 in [-1, 1]: exact in bf16 and fp16, and their tile sums and products exact in fp32. */
    private static FloatTensor quarters(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            data[i] = (rnd.nextInt(9) - 4) / 4f;
        }
        return t;
    }

    /** Gaussian tokens around a Gaussian centre per tile (tile order), so that pooled tiles differ clearly. */
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
                        float value = centre[i] + (float) rnd.nextGaussian();
                        x.data()[(p * s + r) * d + i] = dtype.decodeHalf(dtype.encodeHalf(value));
                    }
                }
            }
        }
        return x;
    }

    private static void assertClose(FloatTensor actual, FloatTensor expected, double tolerance, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
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
        double err = Math.sqrt(diff / norm);
        assertTrue(err < tolerance, what + ": relative L2 error " + err + " >= " + tolerance);
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should mention " + fragment);
    }
}
