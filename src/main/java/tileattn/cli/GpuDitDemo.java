package tileattn.cli;

import java.io.PrintWriter;
import java.util.Locale;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.dit.GpuWanModel;
import tileattn.dit.Noise;
import tileattn.dit.RandomWeights;
import tileattn.dit.SelfAttention;
import tileattn.dit.WanConfig;
import tileattn.dit.WanModel;
import tileattn.layout.Shape3;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;

/**
 * The demo's DiT part: one step of a small Wan-2.1-shaped transformer (random bf16 weights) on the GPU with dense,
 * STA and VSA self-attention, each timed by CUDA events and compared with the CPU model on the same weights.
 */
final class GpuDitDemo {

    /** Wan's structure at demo size: 2 blocks, 2 heads of 128 (the GPU kernels' head dim), text 64 wide over 32. */
    static final WanConfig CONFIG = new WanConfig("demo", 256, 2, 2, 1024, 16, 16, new Shape3(1, 2, 2), 64, 32, 256,
            1e-6f, 10000.0);
    /** Latent 8×24×24 → 8×12×12 = 1,152 video tokens. */
    static final Shape3 LATENT = new Shape3(8, 24, 24);
    private static final int TIMED = 3;

    private GpuDitDemo() {
    }

    static void run(PrintWriter out, long seed) {
        Shape3 grid = CONFIG.tokenGrid(LATENT);
        SelfAttention[] attentions = {
            new SelfAttention.Dense(),
            SelfAttention.Sta.uniform(new Shape3(2, 4, 4), new Window(3, 1, 1), CONFIG.heads()),
            SelfAttention.Vsa.keepTopK(new Shape3(2, 4, 4), 9)};
        out.printf(Locale.ROOT, "DiT step on the GPU: Wan-2.1 structure at demo size (hidden %d, %d blocks, %d heads "
                + "of %d), latent %s -> %d tokens, %d text tokens, batch 2, random bf16 weights; vs the CPU model%n",
                CONFIG.dim(), CONFIG.layers(), CONFIG.heads(), CONFIG.headDim(), LATENT, grid.volume(),
                CONFIG.textLength());
        out.flush();
        var weights = RandomWeights.createBf16Exact(CONFIG, seed);
        WanModel cpu = new WanModel(weights);
        FloatTensor latent = Noise.gaussian(seed + 1, 2, CONFIG.inChannels(), LATENT.t(), LATENT.h(), LATENT.w());
        FloatTensor context = Noise.gaussian(seed + 2, 2, CONFIG.textLength(), CONFIG.textDim());
        float[] timesteps = {937.5f, 937.5f};
        TextTable table = new TextTable("DiT self-attention", "GPU step ms", "rel. L2 vs CPU model");
        try (GpuWanModel gpu = GpuWanModel.open(weights);
             GpuWanModel.Text text = gpu.condition(context);
             DeviceScope scope = gpu.context().openScope()) {
            CudaStream stream = gpu.context().defaultStream();
            DeviceTensor in = DeviceTensor.upload(scope, latent, DType.F32);
            DeviceTensor velocity = scope.allocateTensor(DType.F32, 2, CONFIG.outChannels(), LATENT.t(), LATENT.h(),
                    LATENT.w());
            CudaEvent start = scope.createEvent(), end = scope.createEvent();
            var cpuText = cpu.condition(context);
            for (SelfAttention attention : attentions) {
                gpu.forwardDevice(in, timesteps, text, attention, velocity);   // warm-up: plans, tables
                double[] ms = new double[TIMED];
                for (int i = 0; i < TIMED; i++) {
                    start.record(stream);
                    gpu.forwardDevice(in, timesteps, text, attention, velocity);
                    end.record(stream);
                    ms[i] = CudaEvent.elapsedMillis(start, end);
                }
                float[] got = velocity.download().data();
                float[] want = cpu.forward(latent, timesteps, cpuText, attention).data();
                table.add(attention.describe(), String.format(Locale.ROOT, "%.2f", Measure.median(ms)),
                        String.format(Locale.ROOT, "%.1e", relativeL2(got, want)));
            }
        }
        table.print(out);
        out.flush();
    }

    private static double relativeL2(float[] got, float[] want) {
        double err = 0, norm = 0;
        for (int i = 0; i < want.length; i++) {
            double d = got[i] - want[i];
            err += d * d;
            norm += (double) want[i] * want[i];
        }
        return Math.sqrt(err / Math.max(norm, 1e-30));
    }
}
