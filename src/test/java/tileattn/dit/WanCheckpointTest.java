package tileattn.dit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.ReducedPrecision;
import tileattn.tensor.SafetensorsWriter;
import tileattn.tensor.TensorFileException;

/** Writing and reading the diffusers checkpoint layout, and the errors for checkpoints that do not fit. */
class WanCheckpointTest {

    private static final WanConfig TINY = WanConfig.tiny();
    private static WanWeights weights;

    @TempDir
    Path tmp;

    @BeforeAll
    static void setUp() {
        weights = RandomWeights.create(TINY, 21);
    }

    @Test
    void shardedCheckpointWithIndexRoundTrips() throws Exception {
        Path dir = tmp.resolve("sharded");
        WanCheckpoint.write(dir, weights, 3, DType.F32);
        assertTrue(Files.isRegularFile(dir.resolve(WanCheckpoint.INDEX)));
        for (int i = 1; i <= 3; i++) {
            assertTrue(Files.isRegularFile(dir.resolve(String.format("diffusion_pytorch_model-%05d-of-00003.safetensors", i))));
        }
        assertFalse(Files.exists(dir.resolve(WanCheckpoint.SINGLE)));
        assertSameTensors(weights.tensors(), WanCheckpoint.load(dir, TINY).tensors(), false);
    }

    @Test
    void singleBf16FileInAPipelineFolderLoadsRounded() {
        Path pipeline = tmp.resolve("pipeline");
        WanCheckpoint.write(pipeline.resolve("transformer"), weights, 1, DType.BF16);
        assertSameTensors(weights.tensors(), WanCheckpoint.load(pipeline, TINY).tensors(), true);
        Path file = pipeline.resolve("transformer").resolve(WanCheckpoint.SINGLE);
        assertSameTensors(weights.tensors(), WanCheckpoint.load(file, TINY).tensors(), true);
    }

    @Test
    void loadedWeightsGiveTheSameForward() {
        Path dir = tmp.resolve("forward");
        WanCheckpoint.write(dir, weights, 2, DType.F32);
        FloatTensor latent = Noise.gaussian(3, 1, 16, 2, 4, 4);
        FloatTensor context = Noise.gaussian(4, 1, 3, TINY.textDim());
        WanModel a = new WanModel(weights), b = new WanModel(WanCheckpoint.load(dir, TINY));
        FloatTensor va = a.forward(latent, new float[]{500f}, a.condition(context), new SelfAttention.Dense());
        FloatTensor vb = b.forward(latent, new float[]{500f}, b.condition(context), new SelfAttention.Dense());
        assertArrayEquals(va.data(), vb.data());
    }

    @Test
    void parameterMissingFromTheIndexIsNamed() throws Exception {
        Path dir = tmp.resolve("renamed-index");
        WanCheckpoint.write(dir, weights, 2, DType.F32);
        Path index = dir.resolve(WanCheckpoint.INDEX);
        Files.writeString(index, Files.readString(index).replace("\"blocks.1.attn2.norm_k.weight\"",
                "\"blocks.1.attn2.k_norm.weight\""));
        TensorFileException e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(dir, TINY));
        assertTrue(e.getMessage().startsWith(index.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("'blocks.1.attn2.norm_k.weight' (shape [64] in tiny) is missing from weight_map"),
                e.getMessage());
    }

    @Test
    void parameterRenamedInTheFileIsNamed() {
        Map<String, FloatTensor> t = new LinkedHashMap<>(weights.tensors());
        FloatTensor moved = t.remove("blocks.0.ffn.net.2.bias");
        t.put("blocks.0.ffn.net.2.biass", moved);
        Path dir = writeSingle("renamed", t);
        TensorFileException e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(dir, TINY));
        assertTrue(e.getMessage().startsWith(dir.resolve(WanCheckpoint.SINGLE).toString()), e.getMessage());
        assertTrue(e.getMessage().contains("parameter 'blocks.0.ffn.net.2.bias' (shape [64] in tiny) is missing"),
                e.getMessage());
    }

    @Test
    void misShapedParameterIsNamedWithBothShapes() {
        Map<String, FloatTensor> t = new LinkedHashMap<>(weights.tensors());
        FloatTensor w = t.get("blocks.1.ffn.net.0.proj.weight");
        t.put("blocks.1.ffn.net.0.proj.weight", new FloatTensor(new int[]{64, 128}, w.data()));
        Path dir = writeSingle("misshaped", t);
        TensorFileException e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(dir, TINY));
        assertTrue(e.getMessage().startsWith(dir.resolve(WanCheckpoint.SINGLE).toString()), e.getMessage());
        assertTrue(e.getMessage().contains("'blocks.1.ffn.net.0.proj.weight' has shape [64, 128] but tiny needs [128, 64]"),
                e.getMessage());
    }

    @Test
    void missingShardConfigMismatchAndOtherLayoutsAreReported() throws Exception {
        Path dir = tmp.resolve("noshard");
        WanCheckpoint.write(dir, weights, 2, DType.F32);
        Path shard = dir.resolve("diffusion_pytorch_model-00002-of-00002.safetensors");
        Files.delete(shard);
        TensorFileException e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(dir, TINY));
        assertTrue(e.getMessage().startsWith(shard.toString()) && e.getMessage().contains("no such file"), e.getMessage());

        Path cfg = tmp.resolve("config");
        WanCheckpoint.write(cfg, weights, 1, DType.F32);
        Files.writeString(cfg.resolve(WanCheckpoint.CONFIG), "{\"num_layers\": 30, \"num_attention_heads\": 2}");
        e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(cfg, TINY));
        assertTrue(e.getMessage().contains("config.json: num_layers is 30 but configuration tiny has 2"), e.getMessage());

        Map<String, FloatTensor> original = new LinkedHashMap<>();
        weights.tensors().forEach((name, tensor) -> original.put(name.replace("attn1.to_q", "self_attn.q"), tensor));
        Path wan = writeSingle("original-names", original);
        e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(wan, TINY));
        assertTrue(e.getMessage().contains("original Wan parameter names"), e.getMessage());

        Path empty = Files.createDirectories(tmp.resolve("empty"));
        e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(empty, TINY));
        assertTrue(e.getMessage().contains("no diffusers transformer checkpoint here"), e.getMessage());
        e = assertThrows(TensorFileException.class, () -> WanCheckpoint.load(tmp.resolve("absent"), TINY));
        assertTrue(e.getMessage().contains("no such checkpoint folder or file"), e.getMessage());
    }

    @Test
    void randomWeightsAreSeededAndScaled() {
        Map<String, FloatTensor> again = RandomWeights.create(TINY, 21).tensors();
        Map<String, FloatTensor> other = RandomWeights.create(TINY, 22).tensors();
        Map<String, FloatTensor> first = weights.tensors();
        assertSameTensors(first, again, false);
        assertFalse(java.util.Arrays.equals(first.get("proj_out.weight").data(), other.get("proj_out.weight").data()));
        assertEquals(1 / Math.sqrt(TINY.ffnDim()), std(first.get("blocks.0.ffn.net.2.weight").data(), 0), 0.01);
        assertEquals(1 / Math.sqrt(TINY.patchInputs()), std(first.get("patch_embedding.weight").data(), 0), 0.01);
        assertEquals(0.05, std(first.get("blocks.1.attn1.norm_q.weight").data(), 1), 0.01);
    }

    private Path writeSingle(String name, Map<String, FloatTensor> tensors) {
        Path dir = tmp.resolve(name);
        try {
            Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
        List<NamedTensor> list = new ArrayList<>();
        tensors.forEach((n, t) -> list.add(new NamedTensor(n, t, DType.F32)));
        SafetensorsWriter.write(dir.resolve(WanCheckpoint.SINGLE), list);
        return dir;
    }

    private static void assertSameTensors(Map<String, FloatTensor> expected, Map<String, FloatTensor> actual,
                                          boolean bf16) {
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(actual.keySet()));
        expected.forEach((name, e) -> {
            FloatTensor a = actual.get(name);
            assertArrayEquals(e.shape(), a.shape(), name);
            float[] want = e.data().clone();
            if (bf16) {
                for (int i = 0; i < want.length; i++) {
                    want[i] = ReducedPrecision.fromBf16(ReducedPrecision.toBf16(want[i]));
                }
            }
            assertArrayEquals(want, a.data(), name);
        });
    }

    private static double std(float[] x, double mean) {
        double sq = 0;
        for (float v : x) {
            sq += (v - mean) * (v - mean);
        }
        return Math.sqrt(sq / x.length);
    }
}
