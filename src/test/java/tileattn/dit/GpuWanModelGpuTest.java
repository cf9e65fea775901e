package tileattn.dit;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import tileattn.cuda.GpuTests;
import tileattn.layout.Shape3;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.ReducedPrecision;

/**
 * The GPU model against the CPU model on a small configuration with head dim 64 (the GPU kernels take 64 or 128),
 * both holding the same bf16-rounded weights, for dense, STA and VSA self-attention: the velocities agree within
 * bf16 noise (relative L2).
 */
@Tag("gpu")
class GpuWanModelGpuTest {

    static final WanConfig SMALL = new WanConfig("small-gpu", 128, 2, 2, 256, 16, 16, new Shape3(1, 2, 2), 32, 16, 256,
            1e-6f, 10000.0);

    private static WanModel cpu;
    private static WanWeights weights;
    private static GpuWanModel gpu;

    @BeforeAll
    static void open() {
        GpuTests.openContext().close();   // skips (or fails under TILEATTN_REQUIRE_GPU) without a GPU
        weights = WanWeights.from(SMALL, (name, shape) -> {
            FloatTensor t = RandomWeights.tensor(SMALL, name, shape, 17);
            float[] d = t.data();
            for (int i = 0; i < d.length; i++) {
                d[i] = ReducedPrecision.fromBf16(ReducedPrecision.toBf16(d[i]));
            }
            return t;
        });
        cpu = new WanModel(weights);
        gpu = GpuWanModel.open(weights);
        System.out.println("GPU model: " + gpu.describe());
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    private static double compare(SelfAttention attention, long seed) {
        return compare(gpu, attention, seed);
    }

    /** Two timesteps: the gated branches' products go through y and the norm kernels add them with the gates. */
    private static double compare(GpuWanModel gpu, SelfAttention attention, long seed) {
        return compare(gpu, attention, seed, new float[]{937.5f, 251.25f});
    }

    private static double compare(GpuWanModel gpu, SelfAttention attention, long seed, float[] t) {
        FloatTensor latent = Noise.gaussian(seed, 2, 16, 4, 12, 10);          // tokens 4×6×5 = 120
        FloatTensor context = Noise.gaussian(seed + 1, 2, 7, SMALL.textDim());
        FloatTensor want = cpu.forward(latent, t, cpu.condition(context), attention);
        FloatTensor got;
        try (GpuWanModel.Text text = gpu.condition(context)) {
            got = gpu.forward(latent, t, text, attention);
        }
        assertArrayEquals(want.shape(), got.shape());
        double err = 0, norm = 0;
        for (int i = 0; i < want.size(); i++) {
            assertTrue(Float.isFinite(got.data()[i]), "non-finite velocity at " + i);
            double e = want.data()[i] - got.data()[i];
            err += e * e;
            norm += (double) want.data()[i] * want.data()[i];
        }
        double rel = Math.sqrt(err / norm);
        System.out.printf("GPU vs CPU, %s, residual %s: relative L2 %.3e%n", attention.describe(), gpu.residual(), rel);
        return rel;
    }

    @Test
    void denseAgreesWithTheCpu() {
        assertTrue(compare(new SelfAttention.Dense(), 1) < 2e-2);
    }

    @Test
    void anFp32ResidualStreamAgreesToo() {
        try (GpuWanModel wide = GpuWanModel.open(weights, DType.F32)) {
            assertTrue(compare(wide, new SelfAttention.Dense(), 1) < 2e-2);
        }
    }

    /** One timestep for both entries, as under guidance: the gates are folded into the products' weights. */
    @Test
    void oneTimestepFoldsTheGatesIntoTheProducts() {
        float[] t = {600f, 600f};
        assertTrue(compare(gpu, new SelfAttention.Dense(), 4, t) < 2e-2);
        assertTrue(compare(gpu, SelfAttention.Vsa.keepTopK(new Shape3(2, 2, 2), 9), 5, t) < 2e-2);
        try (GpuWanModel wide = GpuWanModel.open(weights, DType.F32)) {
            assertTrue(compare(wide, new SelfAttention.Dense(), 4, t) < 2e-2);
        }
    }

    @Test
    void aResidualStreamOfAnotherTypeIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GpuWanModel.open(weights, DType.F16));
        assertTrue(e.getMessage().contains("residual stream is BF16 or F32"), e.getMessage());
    }

    @Test
    void staAgreesWithTheCpuInTileOrder() {
        // Tiles of 2x2x2 over 4x6x5 tokens make a 2x3x3 tile grid; the window is sparse along T and W.
        SelfAttention.Sta sta = SelfAttention.Sta.uniform(new Shape3(2, 2, 2), new Window(1, 3, 1), SMALL.heads());
        assertTrue(compare(sta, 2) < 2e-2);
    }

    @Test
    void vsaAgreesWithTheCpu() {
        assertTrue(compare(SelfAttention.Vsa.keepTopK(new Shape3(2, 2, 2), 9), 3) < 2e-2);
    }

    @Test
    void samplerRunsOnEitherModelAndTheLatentsAgree() {
        FloatTensor noise = Noise.gaussian(21, 1, 16, 4, 12, 10);
        TextEmbeddings text = TextEmbeddings.random(SMALL, 9, 22);
        FlowMatchSampler.Settings settings = new FlowMatchSampler.Settings(3, 5.0, 5.0,
                AttentionSchedule.denseFirst(1, AttentionSchedule.always(
                        SelfAttention.Sta.uniform(new Shape3(2, 2, 2), new Window(2, 3, 3), SMALL.heads()))));
        float[] want = FlowMatchSampler.sample(cpu, noise, text, settings, null).data();
        float[] got = FlowMatchSampler.sample(gpu, noise, text, settings, null).data();
        double err = 0, norm = 0;
        for (int i = 0; i < want.length; i++) {
            err += (double) (want[i] - got[i]) * (want[i] - got[i]);
            norm += (double) want[i] * want[i];
        }
        double rel = Math.sqrt(err / norm);
        System.out.printf("sampled latent, GPU vs CPU: relative L2 %.3e%n", rel);
        assertTrue(rel < 2e-2, "relative L2 " + rel);
    }

    @Test
    void aConditionOfAnotherBatchIsRefusedByName() {
        FloatTensor latent = Noise.gaussian(4, 1, 16, 4, 12, 10);
        try (GpuWanModel.Text text = gpu.condition(Noise.gaussian(5, 2, 3, SMALL.textDim()))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> gpu.forward(latent, new float[]{500f}, text, new SelfAttention.Dense()));
            assertTrue(e.getMessage().contains("needs as many timesteps and text conditions"), e.getMessage());
        }
    }
}
