package tileattn.dit;

import static org.junit.jupiter.api.Assertions.*;

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

/** Each dit.cu kernel against the CPU model's own pieces (Norms, Modulation, RopeTable, Patchify) on random inputs. */
@Tag("gpu")
class DitKernelsGpuTest {

    private static CudaContext context;
    private static DitKernels kernels;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        kernels = new DitKernels(KernelLibrary.of(context));
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

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

    @Test
    void gatedResidualThenModulatedAndAffineNorms() {
        Random rnd = new Random(3);
        int batch = 2, s = 37, width = 300, chunks = 6, rows = batch * s;
        float[] x = random(rnd, rows * width, 0.3, 2), y = bf16(random(rnd, rows * width, 0, 1));
        float[] mod = random(rnd, batch * chunks * width, 0, 0.3);
        float[] w = random(rnd, width, 1, 0.1), b = random(rnd, width, 0, 0.1);
        float eps = 1e-6f;
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = context.defaultStream();
            DeviceTensor dx = up(scope, x, DType.F32, rows, width), dy = up(scope, y, DType.BF16, rows, width);
            DeviceTensor dmod = up(scope, mod, DType.F32, batch, chunks, width);
            DeviceTensor out = scope.allocateTensor(DType.BF16, rows, width);
            out.buffer().fill((byte) 0x7F);
            // x += gate(chunk 2)·y; out = LN(x)·(1 + scale(4)) + shift(3)
            kernels.residualNorm(dx, dy, out, new DitKernels.Modulation(dmod, 2, 3, 4), null, null, s, eps, stream);
            stream.synchronize();
            float[] wantX = x.clone();
            Modulation.addGated(wantX, y, batch, s, width, mod, chunks, 2);
            float[] wantOut = wantX.clone();
            Norms.layerNorm(wantOut, rows, width, eps, null, null);
            Modulation.modulate(wantOut, batch, s, width, mod, chunks, 3, 4);
            assertClose(wantX, dx.download().data(), 1e-6, "residual");
            assertClose(wantOut, out.download().data(), 8e-3, "modulated LayerNorm");
            // ungated add, then the affine LayerNorm
            DeviceTensor dw = up(scope, w, DType.F32, width), db = up(scope, b, DType.F32, width);
            kernels.residualNorm(dx, dy, out, null, dw, db, s, eps, stream);
            stream.synchronize();
            Modulation.add(wantX, y);
            wantOut = wantX.clone();
            Norms.layerNorm(wantOut, rows, width, eps, w, b);
            assertClose(wantX, dx.download().data(), 1e-6, "plain residual");
            assertClose(wantOut, out.download().data(), 8e-3, "affine LayerNorm");
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
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = context.defaultStream();
            DeviceTensor din = up(scope, in, DType.BF16, rows, inWidth);
            DeviceTensor cos = up(scope, rope.cosTable(), DType.F32, s, d / 2);
            DeviceTensor sin = up(scope, rope.sinTable(), DType.F32, s, d / 2);
            DeviceTensor dw = up(scope, weight, DType.F32, dim);
            DeviceTensor out = scope.allocateTensor(DType.BF16, batch, heads, s, d);
            out.buffer().fill((byte) 0x7F);
            kernels.toHeads(din, dim, dw, cos, sin, out, s, c.eps(), stream);   // the k columns
            stream.synchronize();
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
            assertClose(want, out.download().data(), 8e-3, "RMSNorm + RoPE to heads");

            // padded planes: rows of L = 5 per batch entry into planes of s rows, plain copy
            int l = 5;
            float[] text = bf16(random(rnd, batch * l * dim, 0, 1));
            DeviceTensor dt = up(scope, text, DType.BF16, batch * l, dim);
            out.buffer().fill((byte) 0);
            kernels.toHeads(dt, 0, null, null, null, out, l, c.eps(), stream);
            stream.synchronize();
            float[] got = out.download().data();
            for (int b = 0; b < batch; b++) {
                for (int h = 0; h < heads; h++) {
                    for (int p = 0; p < s; p++) {
                        for (int e = 0; e < d; e++) {
                            float expect = p < l ? text[(b * l + p) * dim + h * d + e] : 0f;
                            assertEquals(expect, got[((b * heads + h) * s + p) * d + e], 0f, "padded plane");
                        }
                    }
                }
            }

            DeviceTensor heads4 = up(scope, bf16(random(rnd, rows * dim, 0, 1)), DType.BF16, batch, heads, s, d);
            DeviceTensor back = scope.allocateTensor(DType.BF16, rows, dim);
            kernels.fromHeads(heads4, back, stream);
            stream.synchronize();
            float[] src = heads4.download().data(), tokens = back.download().data();
            for (int r = 0; r < rows; r++) {
                int b = r / s, p = r % s;
                for (int j = 0; j < dim; j++) {
                    assertEquals(src[((b * heads + j / d) * s + p) * d + j % d], tokens[r * dim + j], 0f, "from heads");
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
