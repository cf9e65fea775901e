package tileattn.dit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.layout.Shape3;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsWriter;
import tileattn.tensor.TensorFileException;

/** The shifted sigma schedule, Euler steps with guidance, the dense-first schedule and the text file layout. */
class FlowMatchSamplerTest {

    private static final WanConfig TINY = WanConfig.tiny();
    private static WanModel model;

    @TempDir
    Path tmp;

    @BeforeAll
    static void setUp() {
        model = new WanModel(RandomWeights.create(TINY, 5));
    }

    @Test
    void sigmasFollowTheShiftedSchedule() {
        assertArrayEquals(new double[]{1, 2.5 / 3, 0}, FlowMatchSampler.sigmas(2, 5.0), 1e-15);
        double[] s = FlowMatchSampler.sigmas(4, 3.0);
        // u = 0.75: 3·0.75 / (1 + 2·0.75) = 0.9
        assertEquals(0.9, s[1], 1e-15);
        assertArrayEquals(new double[]{1, 0.75, 0.5, 0.25, 0}, FlowMatchSampler.sigmas(4, 1.0), 1e-15);
    }

    @Test
    void oneStepIsAnEulerStepOfTheGuidedVelocity() {
        FloatTensor noise = Noise.gaussian(1, 1, 16, 2, 4, 6);
        TextEmbeddings text = TextEmbeddings.random(TINY, 6, 2);
        FloatTensor x = FlowMatchSampler.sample(model, noise, text,
                new FlowMatchSampler.Settings(1, 5.0, 4.0, AttentionSchedule.always(new SelfAttention.Dense())), null);
        // σ goes 1 → 0 at timestep 1000: x = noise − (v_u + 4·(v_c − v_u)).
        float[] vc = model.forward(noise, new float[]{1000f}, model.condition(text.context()), new SelfAttention.Dense()).data();
        float[] vu = model.forward(noise, new float[]{1000f}, model.condition(text.contextNull()), new SelfAttention.Dense()).data();
        for (int i = 0; i < vc.length; i++) {
            assertEquals(noise.data()[i] - (vu[i] + 4 * (vc[i] - vu[i])), x.data()[i], 1e-4, "element " + i);
        }
    }

    @Test
    void twoStepsChangeTheLatentDeterministicallyWithDenseFirst() {
        FloatTensor noise = Noise.gaussian(9, 1, 16, 3, 6, 10);
        TextEmbeddings text = TextEmbeddings.random(TINY, 16, 3);
        Shape3 tile = new Shape3(2, 2, 2);
        AttentionSchedule schedule = AttentionSchedule.denseFirst(1,
                AttentionSchedule.always(SelfAttention.Sta.uniform(tile, new Window(1, 1, 1), TINY.heads())));
        List<String> seen = new ArrayList<>();
        FlowMatchSampler.Settings settings = new FlowMatchSampler.Settings(2, 5.0, 5.0, schedule);
        FloatTensor a = FlowMatchSampler.sample(model, noise, text, settings,
                (step, steps, sigma, attention, nanos) -> seen.add(step + "/" + steps + " " + attention.describe()));
        FloatTensor b = FlowMatchSampler.sample(model, noise, text, settings, null);
        assertEquals(List.of("0/2 dense", "1/2 sta 1x1x1 tiles of 2x2x2"), seen);
        assertArrayEquals(a.data(), b.data());
        assertArrayEquals(noise.shape(), a.shape());
        double moved = 0;
        for (int i = 0; i < a.size(); i++) {
            assertTrue(Float.isFinite(a.data()[i]));
            moved += Math.abs(a.data()[i] - noise.data()[i]);
        }
        assertTrue(moved / a.size() > 0.1, "mean change " + moved / a.size());
        assertInstanceOf(SelfAttention.Dense.class, schedule.at(0));
        assertEquals(tile, schedule.at(0).tile());
        assertInstanceOf(SelfAttention.Sta.class, schedule.at(1));
        assertEquals(7, ((SelfAttention.Sta) schedule.at(7)).step());
    }

    @Test
    void guidanceWithoutANegativePromptIsRefused() {
        FloatTensor noise = Noise.gaussian(1, 1, 16, 1, 2, 2);
        TextEmbeddings text = new TextEmbeddings(Noise.gaussian(2, 1, 4, TINY.textDim()), null);
        AttentionSchedule dense = AttentionSchedule.always(new SelfAttention.Dense());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> FlowMatchSampler.sample(model,
                noise, text, new FlowMatchSampler.Settings(2, 5.0, 5.0, dense), null));
        assertTrue(e.getMessage().contains("context_null"), e.getMessage());
        FloatTensor x = FlowMatchSampler.sample(model, noise, text, new FlowMatchSampler.Settings(2, 5.0, 1.0, dense), null);
        assertEquals(noise.size(), x.size());
        assertThrows(IllegalArgumentException.class, () -> new FlowMatchSampler.Settings(0, 5.0, 5.0, dense));
        assertThrows(IllegalArgumentException.class, () -> new FlowMatchSampler.Settings(2, 0.0, 5.0, dense));
    }

    @Test
    void textFileLayoutIsReadAndCheckedByName() {
        Path ok = tmp.resolve("text.safetensors");
        SafetensorsWriter.write(ok, List.of(
                new NamedTensor("context", Noise.gaussian(1, 5, TINY.textDim()), DType.BF16),
                new NamedTensor("context_null", Noise.gaussian(2, 1, 3, TINY.textDim()), DType.F32)));
        TextEmbeddings t = TextEmbeddings.read(ok, TINY);
        assertArrayEquals(new int[]{1, 5, 32}, t.context().shape());
        assertArrayEquals(new int[]{1, 3, 32}, t.contextNull().shape());

        Path none = tmp.resolve("none.safetensors");
        SafetensorsWriter.write(none, List.of(new NamedTensor("prompt", Noise.gaussian(1, 5, 32), DType.F32)));
        TensorFileException e = assertThrows(TensorFileException.class, () -> TextEmbeddings.read(none, TINY));
        assertTrue(e.getMessage().contains("no tensor named 'context'") && e.getMessage().contains("prompt"), e.getMessage());

        Path wide = tmp.resolve("wide.safetensors");
        SafetensorsWriter.write(wide, List.of(new NamedTensor("context", Noise.gaussian(1, 2, 5, 4096), DType.F32)));
        e = assertThrows(TensorFileException.class, () -> TextEmbeddings.read(wide, TINY));
        assertTrue(e.getMessage().contains("[2, 5, 4096]; expected [N, L, 32]"), e.getMessage());

        Path longer = tmp.resolve("long.safetensors");
        SafetensorsWriter.write(longer, List.of(new NamedTensor("context", Noise.gaussian(1, 1, 17, 32), DType.F32)));
        e = assertThrows(TensorFileException.class, () -> TextEmbeddings.read(longer, TINY));
        assertTrue(e.getMessage().contains("1..16 tokens"), e.getMessage());
    }
}
