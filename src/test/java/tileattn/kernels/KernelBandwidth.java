package tileattn.kernels;

import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;

/**
 * Not a test: times the layout and conversion kernels at HunyuanVideo size on the GPU (median of event-timed
 * repetitions) next to a device-to-device copy of the same bytes, and spot-checks the permutation at that size.
 * Run on the device with the bundle of scripts/device-build.sh:
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp test-classes:tileattn.jar tileattn.kernels.KernelBandwidth}
 */
public final class KernelBandwidth {

    private static final int REPS = 20;

    private interface Work {
        void run(CudaStream stream);
    }

    private static double medianMillis(DeviceScope scope, CudaStream stream, Work work) {
        CudaEvent start = scope.createEvent();
        CudaEvent end = scope.createEvent();
        for (int i = 0; i < 3; i++) {
            work.run(stream);
        }
        double[] ms = new double[REPS];
        for (int i = 0; i < REPS; i++) {
            start.record(stream);
            work.run(stream);
            end.record(stream);
            ms[i] = CudaEvent.elapsedMillis(start, end);
        }
        Arrays.sort(ms);
        return ms[REPS / 2];
    }

    private static void report(String what, double ms, long bytesMoved) {
        System.out.printf(Locale.ROOT, "%-52s %8.3f ms %8.0f GB/s%n", what, ms, bytesMoved / ms / 1e6);
    }

    public static void main(String[] args) {
        TokenLayout layout = TokenLayout.of(new Shape3(30, 48, 80), new Shape3(6, 8, 8), 256);
        int heads = 24;
        int d = 128;
        int seq = layout.sequenceLength();
        try (CudaContext context = CudaContext.primary(0); DeviceScope scope = context.openScope()) {
            KernelLibrary library = KernelLibrary.of(context);
            TileOrderKernel tileOrder = new TileOrderKernel(library);
            ConvertKernel convert = new ConvertKernel(library);
            CudaStream stream = scope.createStream();
            DeviceTensor f32 = scope.allocateTensor(DType.F32, 1, heads, seq, d);
            DeviceTensor raster = scope.allocateTensor(DType.BF16, 1, heads, seq, d);
            DeviceTensor tiled = scope.allocateTensor(DType.BF16, 1, heads, seq, d);
            short[] bits = new short[Math.toIntExact(raster.elementCount())];
            Random rnd = new Random(3);
            for (int i = 0; i < bits.length; i++) {
                bits[i] = (short) rnd.nextInt();
            }
            raster.buffer().copyFromHost(bits);
            f32.buffer().fill(0x3F8CCCCD);
            long bf16Bytes = raster.bytes();
            System.out.println(context.device().name() + ", [1, " + heads + ", " + seq + ", " + d + "] = "
                    + layout.grid() + " + " + layout.textLength() + " text tokens");
            report("device-to-device copy, bf16 tensor", medianMillis(scope, stream,
                    s -> tiled.buffer().copyFromAsync(raster.buffer(), s)), 2 * bf16Bytes);
            report("raster -> tile order, bf16", medianMillis(scope, stream,
                    s -> tileOrder.toTileOrder(raster, tiled, layout, s)), 2 * bf16Bytes);
            report("tile order -> raster, bf16", medianMillis(scope, stream,
                    s -> tileOrder.toRaster(tiled, raster, layout, s)), 2 * bf16Bytes);
            report("f32 -> bf16", medianMillis(scope, stream, s -> convert.convert(f32, tiled, s)), f32.bytes() + bf16Bytes);
            report("bf16 -> f32", medianMillis(scope, stream, s -> convert.convert(raster, f32, s)), f32.bytes() + bf16Bytes);

            // spot check at full size: the timed launches above were toTileOrder then toRaster of the same data
            tileOrder.toTileOrder(raster, tiled, layout, stream);
            stream.synchronize();
            short[] out = new short[bits.length];
            tiled.buffer().copyToHost(out);
            short[] in = new short[bits.length];
            raster.buffer().copyToHost(in);
            int[] perm = layout.rasterToTileOrder();
            int mismatches = 0;
            for (int probe = 0; probe < 100_000; probe++) {
                int h = rnd.nextInt(heads), r = rnd.nextInt(seq), k = rnd.nextInt(d);
                if (out[(h * seq + perm[r]) * d + k] != in[(h * seq + r) * d + k]) {
                    mismatches++;
                }
            }
            System.out.println("full-size spot check of the permutation: " + mismatches + " mismatches in 100000 probes");
        }
    }
}
