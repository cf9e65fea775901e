package tileattn.search;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.layout.Shape3;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsWriter;

class CaptureFolderTest {

    static final Shape3 VIDEO = new Shape3(3, 5, 7);
    static final Shape3 TILE = new Shape3(1, 2, 3);
    static final int TEXT = 2, HEADS = 3, D = 8;

    /**
     * Writes captures of steps {0, 2} × layers {0, 1}, batch 2 (two example seeds stacked, as classifier-free
     * guidance would give), from the example's heads of different locality; step 2 layer 1 in BF16.
     */
    static void writeFolder(Path dir) throws java.io.IOException {
        for (int step : new int[]{0, 2}) {
            for (int layer = 0; layer < 2; layer++) {
                Capture.Qkv a = ExampleCaptures.create(VIDEO, TEXT, 3, 2, HEADS, D, 11).captures().get(step * 2 + layer).load();
                Capture.Qkv b = ExampleCaptures.create(VIDEO, TEXT, 3, 2, HEADS, D, 12).captures().get(step * 2 + layer).load();
                CaptureFolder.write(dir.resolve("s" + step + "_l" + layer + ".safetensors"), step, layer, VIDEO, TEXT,
                        stack(a.q(), b.q()), stack(a.k(), b.k()), stack(a.v(), b.v()),
                        step == 2 && layer == 1 ? DType.BF16 : DType.F32);
            }
        }
    }

    static FloatTensor stack(FloatTensor a, FloatTensor b) {
        int[] shape = a.shape();
        shape[0] = 2;
        float[] data = new float[a.size() * 2];
        System.arraycopy(a.data(), 0, data, 0, a.size());
        System.arraycopy(b.data(), 0, data, a.size(), b.size());
        return new FloatTensor(shape, data);
    }

    @Test
    void searchesACapturedFolderEndToEnd(@TempDir Path dir) throws Exception {
        writeFolder(dir);
        Files.writeString(dir.resolve("notes.txt"), "not a capture");
        CaptureSet set = CaptureFolder.open(dir);
        assertEquals(VIDEO, set.video());
        assertEquals(TEXT, set.textLength());
        assertEquals(2, set.batch());
        assertEquals(HEADS, set.heads());
        assertEquals(D, set.headDim());
        assertArrayEquals(new int[]{0, 2}, set.steps());
        assertEquals(2, set.layers());

        List<Window> candidates = CandidateWindows.all(new tileattn.layout.TileGrid(VIDEO, TILE).tiles());
        StepPlan plan = StepPlan.forCaptured(4, 0, set.steps());
        ErrorTable table = new WindowSearch(new tileattn.api.CpuBackend()).measure(set, TILE, candidates, plan, WindowSearch.Progress.none());
        double budget = 0.08;
        Selection sel = BudgetRule.budget(budget).select(table, plan);
        long[] pairs = table.candidatePairs();
        for (int i = 0; i < 2; i++) {
            for (int l = 0; l < 2; l++) {
                for (int h = 0; h < HEADS; h++) {
                    assertTrue(sel.error(i, l, h) <= budget);
                    for (int c = 0; c < pairs.length; c++) {
                        if (pairs[c] < pairs[sel.chosen()[i][l][h]]) {
                            assertTrue(table.error(i, l, h, c) > budget, "sparser " + candidates.get(c) + " under budget");
                        }
                    }
                }
            }
        }
        WindowStrategy strategy = sel.toStrategy();
        assertEquals(4, strategy.steps());
        assertArrayEquals(strategy.windowsFor(0, 1), strategy.windowsFor(1, 1), "step 1 uses step 0's choice");
        assertArrayEquals(strategy.windowsFor(2, 1), strategy.windowsFor(3, 1), "step 3 uses step 2's choice");

        // The CPU kernels agree with the literal double-precision attention on every measured error.
        ErrorTable literal = new WindowSearch(new LiteralBackend()).measure(set, TILE, candidates.subList(0, 6), plan,
                WindowSearch.Progress.none());
        for (int i = 0; i < 2; i++) {
            for (int h = 0; h < HEADS; h++) {
                for (int c = 0; c < 6; c++) {
                    assertEquals(literal.error(i, 1, h, c), table.error(i, 1, h, c), 1e-4);
                }
            }
        }
    }

    @Test
    void capturesOfTheSameStepAndLayerAreAveraged(@TempDir Path dir) throws Exception {
        Path a = Files.createDirectory(dir.resolve("a")), b = Files.createDirectory(dir.resolve("b"));
        Path both = Files.createDirectory(dir.resolve("both"));
        for (long seed : new long[]{21, 22}) {
            for (Capture c : ExampleCaptures.create(VIDEO, TEXT, 1, 2, HEADS, D, seed).captures()) {
                Capture.Qkv qkv = c.load();
                String name = "seed" + seed + "_layer" + c.layer() + ".safetensors";
                for (Path folder : List.of(seed == 21 ? a : b, both)) {
                    CaptureFolder.write(folder.resolve(name), 0, c.layer(), VIDEO, TEXT, qkv.q(), qkv.k(), qkv.v(), DType.F32);
                }
            }
        }
        List<Window> candidates = List.of(new Window(1, 1, 1), new Window(3, 1, 3));
        WindowSearch search = new WindowSearch(new tileattn.api.CpuBackend());
        StepPlan plan = StepPlan.forCaptured(1, 0, new int[]{0});
        ErrorTable ea = search.measure(CaptureFolder.open(a), TILE, candidates, plan, WindowSearch.Progress.none());
        ErrorTable eb = search.measure(CaptureFolder.open(b), TILE, candidates, plan, WindowSearch.Progress.none());
        ErrorTable mean = search.measure(CaptureFolder.open(both), TILE, candidates, plan, WindowSearch.Progress.none());
        for (int l = 0; l < 2; l++) {
            for (int h = 0; h < HEADS; h++) {
                for (int c = 0; c < 2; c++) {
                    assertNotEquals(ea.error(0, l, h, c), eb.error(0, l, h, c));
                    assertEquals((ea.error(0, l, h, c) + eb.error(0, l, h, c)) / 2, mean.error(0, l, h, c), 1e-9);
                }
            }
        }
    }

    @Test
    void badFilesAreNamed(@TempDir Path dir) throws Exception {
        Random rnd = new Random(5);
        int s = VIDEO.volume() + TEXT;
        FloatTensor t = random(rnd, 1, HEADS, s, D);
        Map<String, String> good = Map.of("step", "0", "layer", "0", "video", "3,5,7", "text_length", "2");

        assertError(dir, "f.safetensors", Map.of("layer", "0", "video", "3,5,7"), t, "f.safetensors: metadata 'step' is missing");
        assertError(dir, "f.safetensors", Map.of("step", "x", "layer", "0", "video", "3,5,7"), t,
                "f.safetensors: metadata 'step' must be a non-negative integer, got 'x'");
        assertError(dir, "f.safetensors", Map.of("step", "0", "layer", "0"), t, "f.safetensors: metadata 'video'");
        assertError(dir, "f.safetensors", Map.of("step", "0", "layer", "0", "video", "3,5"), t, "f.safetensors: metadata 'video'");
        assertError(dir, "f.safetensors", Map.of("step", "0", "layer", "0", "video", "3,5,7"), t,
                "f.safetensors: S = 107 tokens, but video 3x5x7 + 0 text tokens make 105");
        assertError(dir, "f.safetensors", good, random(rnd, HEADS, s, D), "f.safetensors: 'q' has shape [3, 107, 8]");

        Path folder = dir.resolve("mixed");
        Files.createDirectories(folder);
        SafetensorsWriter.write(folder.resolve("a.safetensors"), qkv(t, t, t), good);
        FloatTensor wider = random(rnd, 1, HEADS, s, 4);
        SafetensorsWriter.write(folder.resolve("b.safetensors"), qkv(wider, wider, wider),
                Map.of("step", "0", "layer", "1", "video", "3,5,7", "text_length", "2"));
        var e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(folder));
        assertTrue(e.getMessage().contains("b.safetensors: q, k, v are [1, 3, 107, 4] but ")
                && e.getMessage().contains("a.safetensors has [1, 3, 107, 8]"), e.getMessage());

        SafetensorsWriter.write(folder.resolve("b.safetensors"), qkv(t, t, t),
                Map.of("step", "0", "layer", "1", "video", "3,7,5", "text_length", "2"));
        e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(folder));
        assertTrue(e.getMessage().contains("b.safetensors: video 3x7x5"), e.getMessage());

        SafetensorsWriter.write(folder.resolve("b.safetensors"), qkv(t, t, random(rnd, 1, HEADS, s, 4)),
                Map.of("step", "0", "layer", "1", "video", "3,5,7", "text_length", "2"));
        e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(folder));
        assertTrue(e.getMessage().contains("b.safetensors: 'v' has shape [1, 3, 107, 4] but 'q' has"), e.getMessage());

        SafetensorsWriter.write(folder.resolve("b.safetensors"), List.of(new NamedTensor("q", t, DType.F32),
                new NamedTensor("k", t, DType.F32)), Map.of("step", "1", "layer", "1", "video", "3,5,7", "text_length", "2"));
        e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(folder));
        assertTrue(e.getMessage().contains("b.safetensors: no tensor 'v'"), e.getMessage());

        SafetensorsWriter.write(folder.resolve("b.safetensors"), qkv(t, t, t),
                Map.of("step", "1", "layer", "1", "video", "3,5,7", "text_length", "2"));
        e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(folder));
        assertTrue(e.getMessage().contains("step 0 has no capture of layer 1"), e.getMessage());

        Files.writeString(folder.resolve("b.safetensors"), "garbage");
        var bad = assertThrows(RuntimeException.class, () -> CaptureFolder.open(folder));
        assertTrue(bad.getMessage().contains("b.safetensors"), bad.getMessage());

        Path empty = dir.resolve("empty");
        Files.createDirectories(empty);
        e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(empty));
        assertTrue(e.getMessage().contains("holds no .safetensors files"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(dir.resolve("nowhere")));
        assertTrue(e.getMessage().contains("no such folder"), e.getMessage());
    }

    @Test
    void nonFiniteInputsAreNamedWhenMeasured(@TempDir Path dir) throws Exception {
        int s = VIDEO.volume() + TEXT;
        FloatTensor t = random(new Random(8), 1, HEADS, s, D);
        FloatTensor k = new FloatTensor(t.shape(), t.data().clone());
        k.data()[((0 * HEADS + 1) * s + 4) * D + 2] = Float.NaN;
        SafetensorsWriter.write(dir.resolve("nan.safetensors"), qkv(t, k, t),
                Map.of("step", "0", "layer", "0", "video", "3,5,7", "text_length", "2"));
        CaptureSet set = CaptureFolder.open(dir);
        var e = assertThrows(IllegalArgumentException.class, () -> new WindowSearch(new tileattn.api.CpuBackend())
                .measure(set, TILE, List.of(new Window(1, 1, 1)), StepPlan.forCaptured(1, 0, new int[]{0}),
                        WindowSearch.Progress.none()));
        assertTrue(e.getMessage().contains("nan.safetensors: k holds NaN at index [0, 1, 4, 2] (raster order)"), e.getMessage());
    }

    private static void assertError(Path dir, String name, Map<String, String> meta, FloatTensor t, String expected) {
        Path folder = dir.resolve("case" + Math.abs(expected.hashCode()));
        try {
            Files.createDirectories(folder);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        SafetensorsWriter.write(folder.resolve(name), qkv(t, t, t), meta);
        var e = assertThrows(IllegalArgumentException.class, () -> CaptureFolder.open(folder));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().contains(folder.resolve(name).toString()), "names the file: " + e.getMessage());
    }

    private static List<NamedTensor> qkv(FloatTensor q, FloatTensor k, FloatTensor v) {
        return List.of(new NamedTensor("q", q, DType.F32), new NamedTensor("k", k, DType.F32), new NamedTensor("v", v, DType.F32));
    }

    private static FloatTensor random(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }
}
