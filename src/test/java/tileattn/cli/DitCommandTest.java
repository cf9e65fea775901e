package tileattn.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.search.StrategyJson;
import tileattn.search.WindowStrategy;
import org.junit.jupiter.api.io.TempDir;
import tileattn.dit.Noise;
import tileattn.dit.RandomWeights;
import tileattn.dit.WanCheckpoint;
import tileattn.dit.WanConfig;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;

class DitCommandTest {

    @TempDir
    Path tmp;

    private static FloatTensor latentOf(Path file) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return f.read("latent");
        }
    }

    @Test
    void tinyStaRunWritesTheLatentWithItsSettings() {
        Path out = tmp.resolve("latent.safetensors");
        CliRun run = CliRun.of("dit", "--config", "tiny", "--latent", "2,4,6", "--steps", "2", "--dense-steps", "1",
                "--attention", "sta", "--sta-tile", "1,1,1", "--window", "1,1,3", "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("2x2x3 = 12 video tokens"), run.out());
        assertTrue(run.out().contains("1..1  dense"), run.out());
        assertTrue(run.out().contains("2..2  sta 1x1x3 tiles of 1x1x1"), run.out());
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertArrayEquals(new int[]{16, 2, 4, 6}, f.read("latent").shape());
            assertEquals("sta 1x1x3 tiles of 1x1x1", f.metadata().get("attention"));
            assertEquals("1", f.metadata().get("dense_steps"));
            assertEquals("tiny", f.metadata().get("config"));
        }
    }

    @Test
    void weightsFolderGivesTheSameLatentAsTheSameRandomWeights() {
        Path dir = tmp.resolve("ckpt");
        WanCheckpoint.write(dir, RandomWeights.create(WanConfig.tiny(), 3), 2, DType.F32);
        Path a = tmp.resolve("a.safetensors"), b = tmp.resolve("b.safetensors");
        String[] common = {"dit", "--latent", "2,4,8", "--steps", "2", "--attention", "vsa", "--vsa-tile", "1,2,2",
            "--topk", "2", "--seed", "3"};
        CliRun random = CliRun.of(concat(common, "--out", a.toString()));
        assertEquals(0, random.exitCode(), random.err());
        CliRun run = CliRun.of(concat(common, "--weights", dir.toString(), "--out", b.toString()));
        assertEquals(0, run.exitCode(), run.err());
        assertArrayEquals(latentOf(a).data(), latentOf(b).data());
    }

    @Test
    void textFileDrivesTheRunAndGuidanceNeedsANegativePrompt() {
        Path text = tmp.resolve("text.safetensors");
        SafetensorsWriter.write(text, List.of(new NamedTensor("context", Noise.gaussian(1, 2, 6, 32), DType.F32)));
        Path out = tmp.resolve("two.safetensors");
        CliRun ok = CliRun.of("dit", "--latent", "1,2,2", "--steps", "1", "--guidance", "1", "--text", text.toString(),
                "--out", out.toString());
        assertEquals(0, ok.exitCode(), ok.err());
        assertArrayEquals(new int[]{2, 16, 1, 2, 2}, latentOf(out).shape());
        String err = CliRun.of("dit", "--latent", "1,2,2", "--steps", "1", "--text", text.toString(), "--out",
                out.toString()).assertOneLineError();
        assertTrue(err.contains("context_null"), err);
    }

    @Test
    void searchStrategyDrivesTheWindowsPerStepAndLayer() throws Exception {
        TokenLayout tokens = TokenLayout.of(new Shape3(2, 2, 3), new Shape3(1, 1, 1), 0);
        Window full = new Window(2, 2, 3), row = new Window(1, 1, 3);
        Window[][][] windows = {{{full, full}, {full, full}}, {{row, row}, {row, row}}};
        Path strategy = tmp.resolve("strategy.json");
        StrategyJson.write(new WindowStrategy(tokens, windows), strategy);

        Path fromStrategy = tmp.resolve("a.safetensors"), fromOptions = tmp.resolve("b.safetensors");
        String[] common = {"dit", "--latent", "2,4,6", "--steps", "2", "--attention", "sta", "--sta-tile", "1,1,1"};
        CliRun a = CliRun.of(concat(common, "--windows", strategy.toString(), "--out", fromStrategy.toString()));
        assertEquals(0, a.exitCode(), a.err());
        assertTrue(a.out().contains("strategy strategy.json"), a.out());
        CliRun b = CliRun.of(concat(common, "--dense-steps", "1", "--window", "1,1,3", "--out", fromOptions.toString()));
        assertEquals(0, b.exitCode(), b.err());
        assertArrayEquals(latentOf(fromOptions).data(), latentOf(fromStrategy).data(),
                "full first step then 1x1x3 everywhere, as with --dense-steps 1 --window 1,1,3");

        Window[][][] threeLayers = {{{row, row}, {row, row}, {row, row}}};
        StrategyJson.write(new WindowStrategy(tokens, threeLayers), strategy);
        String err = CliRun.of(concat(common, "--windows", strategy.toString(), "--out", fromStrategy.toString()))
                .assertOneLineError();
        assertTrue(err.contains("3 layers of 2 heads but the tiny model has 2 layers"), err);
    }

    @Test
    void badOptionsGiveOneLineErrors() throws Exception {
        String out = tmp.resolve("x.safetensors").toString();
        assertTrue(CliRun.of("dit", "--latent", "2,5,6", "--out", out).assertOneLineError().contains("--latent"));
        assertTrue(CliRun.of("dit", "--config", "wan-14b", "--latent", "1,2,2", "--out", out).assertOneLineError()
                .contains("known: wan-1.3b, tiny"));
        String vsa = CliRun.of("dit", "--latent", "2,4,4", "--attention", "vsa", "--vsa-tile", "1,2,2", "--topk", "99",
                "--out", out).assertOneLineError();
        assertTrue(vsa.contains("exceeds the 2 tiles"), vsa);
        String window = CliRun.of("dit", "--latent", "3,4,4", "--attention", "sta", "--sta-tile", "1,1,1", "--window",
                "2,1,1", "--out", out).assertOneLineError();
        assertTrue(window.contains("--window: window 2x1x1 has an even extent"), window);
        Path windows = tmp.resolve("w.json");
        Files.writeString(windows, "{\"windows\": [[1,1,1],[1,1,1],[1,1,1]]}");
        assertTrue(CliRun.of("dit", "--latent", "2,4,4", "--steps", "1", "--attention", "sta", "--sta-tile", "1,1,1",
                "--windows", windows.toString(), "--out", out).assertOneLineError().contains("expected 2 windows"));
        assertTrue(CliRun.of("dit", "--latent", "1,2,2", "--weights", tmp.resolve("none").toString(), "--out", out)
                .assertOneLineError().contains("no such checkpoint"));
    }

    private static String[] concat(String[] a, String... b) {
        String[] r = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
