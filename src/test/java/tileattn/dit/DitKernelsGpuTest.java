package tileattn.dit;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.GpuTests;
import tileattn.kernels.DitKernels;
import tileattn.kernels.KernelLibrary;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.ReducedPrecision;

/**
 * Each dit.cu kernel against the CPU model's own pieces (Norms, Modulation, RopeTable, Patchify, Linear) on random
 * inputs, with odd row counts. The row kernels run twice, through the vector kernels (chosen where the shape allows)
 * and through {@link DitKernels#generic}; widths are chosen so that every vector instantiation runs.
 */
@Tag("gpu")
class DitKernelsGpuTest {

    private static CudaContext context;
    private static DitKernels kernels;
    private static DitKernels generic;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        KernelLibrary library = KernelLibrary.of(context);
        kernels = new DitKernels(library);
        generic = DitKernels.generic(library);
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    /** Widths that reach every vector instantiation (1 warp × 1..8 chunks per lane, 4 warps × 3..8), plus Wan's. */
    private static final int[] SWEEP_WIDTHS = {8, 264, 520, 776, 1032, 1288, 1544, 1800, 2056, 3080, 4104, 5128, 6152,
            7176, 8192, 1536, 5120};

    private static float[] random(Random rnd, int n, double mean, double std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (mean + std * rnd.nextGaussian());
        }
        return a;
    }

    private static float[] bf16(float[] a) {
        float[] r = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            r[i] = ReducedPrecision.fromBf16(ReducedPrecision.toBf16(a[i]));
        }
        return r;
    }

    private static DeviceTensor up(DeviceScope scope, float[] data, DType type, int... shape) {
        return DeviceTensor.upload(scope, new FloatTensor(shape, data), type);
    }

    private static DeviceTensor poisoned(DeviceScope scope, DType type, int... shape) {
        DeviceTensor t = scope.allocateTensor(type, shape);
        t.buffer().fill((byte) 0x7F);
        return t;
    }

    private static void assertClose(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what);
        double err = 0, norm = 0;
        for (int i = 0; i < want.length; i++) {
            assertTrue(Float.isFinite(got[i]), what + ": non-finite at " + i);
            err += (double) (want[i] - got[i]) * (want[i] - got[i]);
            norm += (double) want[i] * want[i];
        }
        double rel = Math.sqrt(err / Math.max(norm, 1e-30));
        assertTrue(rel < tol, what + ": relative L2 error " + rel);
    }

    private static String name(DitKernels k) {
        return k == generic ? "generic" : "vector";
    }

    /**
     * x += gate·y, out = LN(x)·(1 + scale) + shift, then x += y, out = LN(x)·w + b; both forms, one width, with the
     * residual x in F32 and in BF16 (rounded after each add, the norm taken of the rounded x).
     */
    private static void residualNormCase(int width, int s, long seed) {
        for (DType residual : new DType[]{DType.F32, DType.BF16}) {
            residualNormCase(width, s, seed, residual);
        }
    }

    private static void residualNormCase(int width, int s, long seed, DType residual) {
        Random rnd = new Random(seed);
        int batch = 2, chunks = 6, rows = batch * s;
        boolean bf16X = residual == DType.BF16;
        float[] x0 = random(rnd, rows * width, 0.3, 2), y = bf16(random(rnd, rows * width, 0, 1));
        if (bf16X) {
            x0 = bf16(x0);
        }
        float[] mod = random(rnd, batch * chunks * width, 0, 0.3);
        float[] w = random(rnd, width, 1, 0.1), b = random(rnd, width, 0, 0.1);
        float eps = 1e-6f;
        float[] wantX = x0.clone();
        Modulation.addGated(wantX, y, batch, s, width, mod, chunks, 2);
        if (bf16X) {
            wantX = bf16(wantX);
        }
        float[] wantOut = wantX.clone();
        Norms.layerNorm(wantOut, rows, width, eps, null, null);
        Modulation.modulate(wantOut, batch, s, width, mod, chunks, 3, 4);
        float[] wantX2 = wantX.clone();
        Modulation.add(wantX2, y);
        if (bf16X) {
            wantX2 = bf16(wantX2);
        }
        float[] wantOut2 = wantX2.clone();
        Norms.layerNorm(wantOut2, rows, width, eps, w, b);
        // A BF16 sum may round the other way where the device's fused multiply-add differs from Java's in the last
        // fp32 bit: a rare one-ulp step of 2^-8 relative.
        double xTol = bf16X ? 1e-3 : 1e-6;
        for (DitKernels k : new DitKernels[]{kernels, generic}) {
            String what = name(k) + " width " + width + ", " + rows + " rows, residual " + residual;
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = context.defaultStream();
                DeviceTensor dx = up(scope, x0, residual, rows, width), dy = up(scope, y, DType.BF16, rows, width);
                DeviceTensor dmod = up(scope, mod, DType.F32, batch, chunks, width);
                DeviceTensor out = poisoned(scope, DType.BF16, rows, width);
                k.residualNorm(dx, dy, out, new DitKernels.Modulation(dmod, 2, 3, 4), null, null, s, eps, stream);
                stream.synchronize();
                assertClose(wantX, dx.download().data(), xTol, what + ": gated residual");
                assertClose(wantOut, out.download().data(), 8e-3, what + ": modulated LayerNorm");
                DeviceTensor dw = up(scope, w, DType.F32, width), db = up(scope, b, DType.F32, width);
                out.buffer().fill((byte) 0x7F);
                k.residualNorm(dx, dy, out, null, dw, db, s, eps, stream);
                stream.synchronize();
                assertClose(wantX2, dx.download().data(), xTol, what + ": plain residual");
                assertClose(wantOut2, out.download().data(), 8e-3, what + ": affine LayerNorm");
            }
        }
    }

    @Test
    void gatedResidualThenModulatedAndAffineNorms() {
        residualNormCase(300, 37, 3);    // generic only (300 is not a multiple of 8)
        residualNormCase(1536, 37, 4);   // Wan 1.3B
    }

    @Test
    void residualNormAtEveryVectorShape() {
        for (int width : SWEEP_WIDTHS) {
            residualNormCase(width, 5, width);
        }
    }

    @Test
    void normWithoutResidualAndResidualWithoutNorm() {
        Random rnd = new Random(8);
        int batch = 2, s = 13, width = 1536, chunks = 6, rows = batch * s;
        float[] x = random(rnd, rows * width, -0.2, 1.5), y = bf16(random(rnd, rows * width, 0, 1));
        float[] mod = random(rnd, batch * chunks * width, 0, 0.3);
        float eps = 1e-6f;
        float[] wantOut = x.clone();
        Norms.layerNorm(wantOut, rows, width, eps, null, null);
        Modulation.modulate(wantOut, batch, s, width, mod, chunks, 0, 1);
        float[] wantX = x.clone();
        Modulation.addGated(wantX, y, batch, s, width, mod, chunks, 5);
        for (DitKernels k : new DitKernels[]{kernels, generic}) {
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = context.defaultStream();
                DeviceTensor dx = up(scope, x, DType.F32, rows, width), dy = up(scope, y, DType.BF16, rows, width);
                DeviceTensor dmod = up(scope, mod, DType.F32, batch, chunks, width);
                DeviceTensor out = poisoned(scope, DType.BF16, rows, width);
                k.residualNorm(dx, null, out, new DitKernels.Modulation(dmod, -1, 0, 1), null, null, s, eps, stream);
                stream.synchronize();
                assertArrayEquals(x, dx.download().data(), 0f, name(k) + ": x untouched without y");
                assertClose(wantOut, out.download().data(), 8e-3, name(k) + ": modulated LayerNorm of x");
                k.residualNorm(dx, dy, null, new DitKernels.Modulation(dmod, 5, -1, -1), null, null, s, eps, stream);
                stream.synchronize();
                assertClose(wantX, dx.download().data(), 1e-6, name(k) + ": residual without a norm");
            }
        }
    }

    /** Reference rows → heads for one part: optional RMSNorm over the columns, optional rotation by given tables. */
    private static float[] referenceHeads(float[] in, int inWidth, int column, int batch, int s, int planeRows, int heads,
                                          int d, float[] weight, float[] cos, float[] sin, float eps) {
        int rows = batch * s, width = heads * d;
        float[] part = new float[rows * width];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(in, r * inWidth + column, part, r * width, width);
        }
        if (weight != null) {
            Norms.rmsNorm(part, rows, width, eps, weight);
        }
        float[] out = new float[batch * heads * planeRows * d];
        for (int r = 0; r < rows; r++) {
            int b = r / s, p = r % s;
            for (int h = 0; h < heads; h++) {
                int src = r * width + h * d, dst = ((b * heads + h) * planeRows + p) * d;
                for (int i = 0; i < d / 2; i++) {
                    float x0 = part[src + 2 * i], x1 = part[src + 2 * i + 1];
                    if (cos != null) {
                        float c = cos[p * (d / 2) + i], sn = sin[p * (d / 2) + i];
                        out[dst + 2 * i] = x0 * c - x1 * sn;
                        out[dst + 2 * i + 1] = x0 * sn + x1 * c;
                    } else {
                        out[dst + 2 * i] = x0;
                        out[dst + 2 * i + 1] = x1;
                    }
                }
            }
        }
        return out;
    }

    /** q (RMSNorm + RoPE), k (RMSNorm + RoPE) and v (copy) out of one fused projection, in one call, both forms. */
    private static void qkvToHeadsCase(int heads, int d, int s, long seed) {
        Random rnd = new Random(seed);
        int batch = 2, dim = heads * d, rows = batch * s, inWidth = 3 * dim;
        float eps = 1e-6f;
        float[] in = bf16(random(rnd, rows * inWidth, 0, 1));
        float[] wq = random(rnd, dim, 1, 0.05), wk = random(rnd, dim, 1, 0.05);
        float[] cos = new float[s * d / 2], sin = new float[s * d / 2];
        for (int i = 0; i < cos.length; i++) {
            double angle = rnd.nextDouble() * 2 * Math.PI;
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
        float[] wantQ = referenceHeads(in, inWidth, 0, batch, s, s, heads, d, wq, cos, sin, eps);
        float[] wantK = referenceHeads(in, inWidth, dim, batch, s, s, heads, d, wk, cos, sin, eps);
        float[] wantV = referenceHeads(in, inWidth, 2 * dim, batch, s, s, heads, d, null, null, null, eps);
        for (DitKernels k : new DitKernels[]{kernels, generic}) {
            String what = name(k) + " " + heads + " heads of " + d + ", " + rows + " rows";
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = context.defaultStream();
                DeviceTensor din = up(scope, in, DType.BF16, rows, inWidth);
                DeviceTensor dcos = up(scope, cos, DType.F32, s, d / 2), dsin = up(scope, sin, DType.F32, s, d / 2);
                DeviceTensor dq = poisoned(scope, DType.BF16, batch, heads, s, d);
                DeviceTensor dk = poisoned(scope, DType.BF16, batch, heads, s, d);
                DeviceTensor dv = poisoned(scope, DType.BF16, batch, heads, s, d);
                k.toHeads(List.of(new DitKernels.HeadsPart(din, 0, up(scope, wq, DType.F32, dim), true, dq),
                        new DitKernels.HeadsPart(din, dim, up(scope, wk, DType.F32, dim), true, dk),
                        new DitKernels.HeadsPart(din, 2 * dim, null, false, dv)), dcos, dsin, s, eps, stream);
                stream.synchronize();
                assertClose(wantQ, dq.download().data(), 8e-3, what + ": q");
                assertClose(wantK, dk.download().data(), 8e-3, what + ": k");
                assertArrayEquals(wantV, dv.download().data(), 0f, what + ": v");
            }
        }
    }

    @Test
    void qkvToHeadsInOneLaunch() {
        qkvToHeadsCase(12, 128, 37, 21);   // Wan 1.3B
        qkvToHeadsCase(2, 64, 19, 22);
        qkvToHeadsCase(3, 12, 7, 23);      // d = 12 is not a power of two: generic in both
    }

    @Test
    void toHeadsAtEveryVectorShape() {
        // widths 128·heads: 1 warp × 1..8 chunks per lane for heads 1..15 odd, 4 warps × 3..8 for heads 17..57 by 8
        for (int heads : new int[]{1, 3, 5, 7, 9, 11, 13, 15, 17, 25, 33, 40, 41, 49, 57, 64}) {
            qkvToHeadsCase(heads, 128, 5, 100 + heads);
        }
    }

    @Test
    void headsWithRmsNormAndRopeInTileOrderAndBack() {
        Random rnd = new Random(5);
        WanConfig c = new WanConfig("kernel-test", 128, 1, 2, 64, 16, 16, new Shape3(1, 2, 2), 8, 4, 16, 1e-6f, 10000.0);
        Shape3 grid = new Shape3(3, 5, 7);
        int[] raster = new TileGrid(grid, new Shape3(2, 2, 3)).tileOrderToRaster();
        int s = raster.length, batch = 2, heads = c.heads(), d = c.headDim(), dim = c.dim(), rows = batch * s;
        RopeTable rope = new RopeTable(c, grid, raster);
        int inWidth = 3 * dim;   // q, k, v side by side as the fused projection writes them
        float[] in = bf16(random(rnd, rows * inWidth, 0, 1));
        float[] weight = random(rnd, dim, 1, 0.05);
        float[] k = new float[rows * dim];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(in, r * inWidth + dim, k, r * dim, dim);
        }
        Norms.rmsNorm(k, rows, dim, c.eps(), weight);
        float[] want = new float[rows * dim];
        for (int r = 0; r < rows; r++) {
            int b = r / s, p = r % s;
            for (int h = 0; h < heads; h++) {
                rope.rotate(k, r * dim + h * d, want, ((b * heads + h) * s + p) * d, p);
            }
        }
        for (DitKernels kern : new DitKernels[]{kernels, generic}) {
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = context.defaultStream();
                DeviceTensor din = up(scope, in, DType.BF16, rows, inWidth);
                DeviceTensor cos = up(scope, rope.cosTable(), DType.F32, s, d / 2);
                DeviceTensor sin = up(scope, rope.sinTable(), DType.F32, s, d / 2);
                DeviceTensor dw = up(scope, weight, DType.F32, dim);
                DeviceTensor out = poisoned(scope, DType.BF16, batch, heads, s, d);
                kern.toHeads(din, dim, dw, cos, sin, out, s, c.eps(), stream);   // the k columns
                stream.synchronize();
                assertClose(want, out.download().data(), 8e-3, name(kern) + ": RMSNorm + RoPE to heads");
            }
        }
    }

    @Test
    void unalignedColumnsTakeTheGenericKernel() {
        // rows of 2·dim + 4 values and columns from 4: neither the row pitch nor the start is 16-byte aligned
        Random rnd = new Random(14);
        int batch = 2, heads = 4, d = 64, dim = heads * d, s = 9, rows = batch * s, inWidth = 2 * dim + 4;
        float eps = 1e-6f;
        float[] in = bf16(random(rnd, rows * inWidth, 0, 1)), w = random(rnd, dim, 1, 0.05);
        float[] want = referenceHeads(in, inWidth, 4, batch, s, s, heads, d, w, null, null, eps);
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = context.defaultStream();
            DeviceTensor out = poisoned(scope, DType.BF16, batch, heads, s, d);
            kernels.toHeads(up(scope, in, DType.BF16, rows, inWidth), 4, up(scope, w, DType.F32, dim), null, null, out, s,
                    eps, stream);
            stream.synchronize();
            assertClose(want, out.download().data(), 8e-3, "unaligned columns to heads");
        }
    }

    @Test
    void textKeysAndValuesIntoPaddedPlanes() {
        Random rnd = new Random(6);
        int batch = 2, heads = 12, d = 128, dim = heads * d, l = 5, planeRows = 33;
        float eps = 1e-6f;
        float[] keys = bf16(random(rnd, batch * l * dim, 0, 1)), values = bf16(random(rnd, batch * l * dim, 0, 1));
        float[] wk = random(rnd, dim, 1, 0.05);
        float[] wantK = referenceHeads(keys, dim, 0, batch, l, planeRows, heads, d, wk, null, null, eps);
        float[] wantV = referenceHeads(values, dim, 0, batch, l, planeRows, heads, d, null, null, null, eps);
        for (DitKernels k : new DitKernels[]{kernels, generic}) {
            try (DeviceScope scope = context.openScope()) {
                CudaStream stream = context.defaultStream();
                DeviceTensor dk = scope.allocateTensor(DType.BF16, batch, heads, planeRows, d);
                DeviceTensor dv = scope.allocateTensor(DType.BF16, batch, heads, planeRows, d);
                dk.buffer().fill((byte) 0);
                dv.buffer().fill((byte) 0);
                k.toHeads(List.of(new DitKernels.HeadsPart(up(scope, keys, DType.BF16, batch * l, dim), 0,
                                up(scope, wk, DType.F32, dim), false, dk),
                        new DitKernels.HeadsPart(up(scope, values, DType.BF16, batch * l, dim), 0, null, false, dv)),
                        null, null, l, eps, stream);
                stream.synchronize();
                // rows past L in each plane stay zero (the reference leaves them zero too)
                assertClose(wantK, dk.download().data(), 8e-3, name(k) + ": normalised keys in padded planes");
                float[] gotK = dk.download().data();
                for (int i = 0; i < wantK.length; i++) {
                    if (wantK[i] == 0f) {
                        assertEquals(0f, gotK[i], 0f, name(k) + ": padding of the key planes at " + i);
                    }
                }
                assertArrayEquals(wantV, dv.download().data(), 0f, name(k) + ": values in padded planes");
            }
        }
    }

    @Test
    void smallLinearsOfTheTimeEmbedding() {
        Random rnd = new Random(12);
        int batch = 3, in = 37, out = 50;
        float[] x = random(rnd, batch * in, 0, 2);
        Linear layer = new Linear(in, out, random(rnd, in * out, 0, 0.2), random(rnd, out, 0, 0.1));
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = context.defaultStream();
            DeviceTensor dx = up(scope, x, DType.F32, batch, in);
            DeviceTensor dw = up(scope, layer.weight(), DType.F32, out, in);
            DeviceTensor db = up(scope, layer.bias(), DType.F32, out);
            DeviceTensor dy = poisoned(scope, DType.F32, batch, out);
            kernels.smallLinear(dx, dw, db, dy, false, stream);
            stream.synchronize();
            assertClose(layer.apply(x, batch), dy.download().data(), 1e-6, "linear");
            dy.buffer().fill((byte) 0x7F);
            kernels.smallLinear(dx, dw, db, dy, true, stream);
            stream.synchronize();
            assertClose(layer.apply(Activations.silu(x), batch), dy.download().data(), 1e-6, "linear of SiLU");
        }
    }

    @Test
    void modulationTablesOfEveryBlockAndTheHead() {
        Random rnd = new Random(13);
        int batch = 2, layers = 3, chunks = 6, dim = 40;
        float[] tables = random(rnd, layers * chunks * dim, 0, 1), head = random(rnd, 2 * dim, 0, 1);
        float[] proj = random(rnd, batch * chunks * dim, 0, 1), temb = random(rnd, batch * dim, 0, 1);
        int per = (layers + 1) * chunks * dim;
        float[] want = new float[batch * per];
        for (int b = 0; b < batch; b++) {
            for (int l = 0; l < layers; l++) {
                float[] table = java.util.Arrays.copyOfRange(tables, l * chunks * dim, (l + 1) * chunks * dim);
                float[] perBatch = Modulation.perBatch(table, proj, batch);
                System.arraycopy(perBatch, b * chunks * dim, want, b * per + l * chunks * dim, chunks * dim);
            }
            float[] headMod = Modulation.perBatch(head, Modulation.repeatChunks(temb, batch, 2), batch);
            System.arraycopy(headMod, b * 2 * dim, want, b * per + layers * chunks * dim, 2 * dim);
        }
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = context.defaultStream();
            DeviceTensor mod = poisoned(scope, DType.F32, batch, (layers + 1) * chunks, dim);
            kernels.modulation(up(scope, tables, DType.F32, layers, chunks, dim), up(scope, head, DType.F32, 2, dim),
                    up(scope, proj, DType.F32, batch, chunks * dim), up(scope, temb, DType.F32, batch, dim), mod, stream);
            stream.synchronize();
            assertArrayEquals(want, mod.download().data(), 0f, "modulation tables");
        }
    }

    /** out[r][c] = gate[r] · in[r][c] with batch entry 0's gate chunk: BF16 in, F32 exact, BF16 rounded once. */
    @Test
    void gateRowsFoldTheGateIntoAWeightOrBias() {
        Random rnd = new Random(17);
        int batch = 2, chunks = 6, n = 300, cols = 7, gateChunk = 4;
        float[] table = random(rnd, batch * chunks * n, 0, 1), weight = bf16(random(rnd, n * cols, 0, 1));
        for (DType type : new DType[]{DType.F32, DType.BF16}) {
            for (int c : new int[]{cols, 1}) {
                float[] want = new float[n * c];
                for (int r = 0; r < n; r++) {
                    for (int j = 0; j < c; j++) {
                        want[r * c + j] = table[gateChunk * n + r] * weight[r * cols + j];
                    }
                }
                float[] in = new float[n * c];
                for (int r = 0; r < n; r++) {
                    System.arraycopy(weight, r * cols, in, r * c, c);
                }
                try (DeviceScope scope = context.openScope()) {
                    int[] shape = c == 1 ? new int[]{n} : new int[]{n, c};
                    DeviceTensor out = poisoned(scope, type, shape);
                    kernels.gateRows(new DitKernels.Modulation(up(scope, table, DType.F32, batch, chunks, n), gateChunk,
                            -1, -1), up(scope, in, DType.BF16, shape), out, context.defaultStream());
                    context.defaultStream().synchronize();
                    assertArrayEquals(type == DType.F32 ? want : bf16(want), out.download().data(), 0f,
                            "gate rows " + type + " cols " + c);
                }
            }
        }
    }

    @Test
    void geluTanhMatchesTheCpu() {
        float[] x = bf16(random(new Random(9), 10_001, 0, 3));
        try (DeviceScope scope = context.openScope()) {
            DeviceTensor dx = up(scope, x, DType.BF16, x.length);
            kernels.geluTanh(dx, context.defaultStream());
            context.defaultStream().synchronize();
            float[] want = x.clone();
            Activations.geluTanh(want);
            assertClose(want, dx.download().data(), 5e-3, "GELU");
        }
    }

    @Test
    void patchGatherAndHeadScatterMatchPatchify() {
        Random rnd = new Random(11);
        Shape3 patch = new Shape3(1, 2, 2);
        int batch = 2, channels = 16, lt = 3, lh = 10, lw = 6;
        Shape3 grid = new Shape3(lt, lh / 2, lw / 2);
        int[] raster = new TileGrid(grid, new Shape3(2, 2, 2)).tileOrderToRaster();
        int s = raster.length, width = channels * patch.volume();
        FloatTensor latent = new FloatTensor(new int[]{batch, channels, lt, lh, lw}, bf16(random(rnd, batch * channels * lt * lh * lw, 0, 1)));
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = context.defaultStream();
            DeviceBuffer order = scope.allocate(4L * s);
            order.copyFromHost(raster);
            DeviceTensor dl = DeviceTensor.upload(scope, latent, DType.F32);
            DeviceTensor rows = scope.allocateTensor(DType.BF16, batch * s, width);
            kernels.patchify(dl, order, patch, rows, stream);
            stream.synchronize();
            assertArrayEquals(Patchify.patches(latent, patch, grid, raster), rows.download().data(), 0f, "patch rows");

            float[] head = random(rnd, batch * s * width, 0, 1);
            DeviceTensor dh = up(scope, head, DType.F32, batch * s, width);
            DeviceTensor out = scope.allocateTensor(DType.F32, batch, channels, lt, lh, lw);
            out.buffer().fill((byte) 0x7F);
            kernels.unpatchify(dh, order, patch, out, stream);
            stream.synchronize();
            assertArrayEquals(Patchify.unpatchify(head, batch, channels, patch, grid, raster).data(),
                    out.download().data(), 0f, "unpatchified latent");
        }
    }
}
