package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
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
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;

/** The GPU permutation against {@link TokenLayout}'s permutations, bit for bit, on random data. */
@Tag("gpu")
class TileOrderKernelGpuTest {

    private static final int POISON_INT = 0xA5A5A5A5;
    private static final short POISON_SHORT = (short) 0xA5A5;

    private static CudaContext context;
    private static TileOrderKernel kernel;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
        kernel = new TileOrderKernel(KernelLibrary.of(context));
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    private record Case(Shape3 video, Shape3 tile, int text, int batch, int heads, int d, DType dtype, int misalign) {
    }

    /** Element bits of a [B, heads, S, d] tensor, as ints (low 16 bits for 2-byte types); never the poison. */
    private static int[] randomBits(Random rnd, long n, DType dtype) {
        int[] bits = new int[Math.toIntExact(n)];
        for (int i = 0; i < bits.length; i++) {
            int v = dtype.bytes() == 4 ? rnd.nextInt() : rnd.nextInt() & 0xFFFF;
            bits[i] = v == POISON_INT || v == (POISON_SHORT & 0xFFFF) ? v ^ 1 : v;
        }
        return bits;
    }

    /** A tensor whose start is {@code misalign} bytes past a 256-byte boundary, to exercise the narrow row units. */
    private static DeviceTensor allocate(DeviceScope scope, Case c, int misalign) {
        int[] shape = {c.batch, c.heads, TokenLayout.of(c.video, c.tile, c.text).sequenceLength(), c.d};
        long bytes = (long) c.batch * c.heads * shape[2] * c.d * c.dtype.bytes();
        return new DeviceTensor(scope.allocate(bytes + 16).slice(misalign, bytes), shape, c.dtype);
    }

    private static void upload(DeviceTensor t, int[] bits) {
        if (t.dtype().bytes() == 4) {
            t.buffer().copyFromHost(bits);
        } else {
            short[] s = new short[bits.length];
            for (int i = 0; i < bits.length; i++) {
                s[i] = (short) bits[i];
            }
            t.buffer().copyFromHost(s);
        }
    }

    private static int[] download(DeviceTensor t) {
        int n = Math.toIntExact(t.elementCount());
        int[] bits = new int[n];
        if (t.dtype().bytes() == 4) {
            t.buffer().copyToHost(bits);
        } else {
            short[] s = new short[n];
            t.buffer().copyToHost(s);
            for (int i = 0; i < n; i++) {
                bits[i] = s[i] & 0xFFFF;
            }
        }
        return bits;
    }

    private static void poison(DeviceTensor t) {
        t.buffer().fill((byte) 0xA5);
    }

    private static void check(Case c, Random rnd) {
        TokenLayout layout = TokenLayout.of(c.video, c.tile, c.text);
        int seq = layout.sequenceLength();
        int[] perm = layout.rasterToTileOrder();
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor raster = allocate(scope, c, c.misalign);
            DeviceTensor tiled = allocate(scope, c, 0);
            DeviceTensor back = allocate(scope, c, c.misalign);
            int[] in = randomBits(rnd, raster.elementCount(), c.dtype);
            upload(raster, in);
            poison(tiled);
            poison(back);
            kernel.toTileOrder(raster, tiled, layout, stream);
            kernel.toRaster(tiled, back, layout, stream);
            stream.synchronize();
            int[] gotTiled = download(tiled);
            int[] gotBack = download(back);
            for (int s = 0; s < c.batch * c.heads; s++) {
                for (int r = 0; r < seq; r++) {
                    for (int k = 0; k < c.d; k++) {
                        int src = (s * seq + r) * c.d + k;
                        int dst = (s * seq + perm[r]) * c.d + k;
                        if (gotTiled[dst] != in[src]) {
                            fail(c + ": tile order slice " + s + " raster token " + r + " -> " + perm[r] + " element "
                                    + k + ": expected 0x" + Integer.toHexString(in[src]) + " got 0x" + Integer.toHexString(gotTiled[dst]));
                        }
                    }
                }
            }
            assertArrayEquals(in, gotBack, c + ": raster -> tile order -> raster is the identity");
        }
    }

    @Test
    void matchesTheLayoutPermutationsOnRandomShapes() {
        Random rnd = new Random(17);
        int[] dims = {1, 2, 3, 5, 8, 12, 16, 24, 64, 72, 128};
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            Shape3 video = new Shape3(1 + rnd.nextInt(7), 1 + rnd.nextInt(9), 1 + rnd.nextInt(11));
            Shape3 tile = new Shape3(1 + rnd.nextInt(4), 1 + rnd.nextInt(5), 1 + rnd.nextInt(6));
            int text = switch (i % 3) {
                case 0 -> 0;
                case 1 -> 1;
                default -> 2 + rnd.nextInt(20);
            };
            DType dtype = DType.values()[i % 3];
            int misalign = i % 4 == 3 ? dtype.bytes() : 0;
            cases.add(new Case(video, tile, text, 1 + rnd.nextInt(2), 1 + rnd.nextInt(3), dims[rnd.nextInt(dims.length)], dtype, misalign));
        }
        // a DiT-like case: partial tiles in every dimension, 4x4x4 tiles, head dim 128, text after the video
        cases.add(new Case(new Shape3(9, 14, 22), new Shape3(4, 4, 4), 7, 1, 3, 128, DType.BF16, 0));
        cases.add(new Case(new Shape3(5, 6, 10), new Shape3(6, 8, 8), 0, 2, 2, 64, DType.F32, 0));
        for (Case c : cases) {
            check(c, rnd);
        }
    }

    @Test
    void rejectsMismatchedArguments() {
        TokenLayout layout = TokenLayout.of(new Shape3(2, 3, 4), new Shape3(2, 2, 2), 3);
        int seq = layout.sequenceLength();
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            DeviceTensor a = scope.allocateTensor(DType.BF16, 1, 2, seq, 8);
            DeviceTensor otherType = scope.allocateTensor(DType.F16, 1, 2, seq, 8);
            DeviceTensor otherShape = scope.allocateTensor(DType.BF16, 1, 2, seq, 16);
            DeviceTensor wrongSeq = scope.allocateTensor(DType.BF16, 1, 2, seq + 1, 8);
            DeviceTensor rank3 = scope.allocateTensor(DType.BF16, 2, seq, 8);
            assertThrows(IllegalArgumentException.class, () -> kernel.toTileOrder(a, otherType, layout, stream));
            assertThrows(IllegalArgumentException.class, () -> kernel.toTileOrder(a, otherShape, layout, stream));
            assertThrows(IllegalArgumentException.class, () -> kernel.toTileOrder(wrongSeq, wrongSeq, layout, stream));
            assertThrows(IllegalArgumentException.class, () -> kernel.toRaster(rank3, rank3, layout, stream));
            IllegalArgumentException inPlace = assertThrows(IllegalArgumentException.class, () -> kernel.toTileOrder(a, a, layout, stream));
            assertTrue(inPlace.getMessage().contains("overlap"), inPlace.getMessage());
        }
    }
}
