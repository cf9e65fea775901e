package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.kernels.GpuSupport;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.search.CaptureFolder;
import tileattn.search.ExampleCaptures;
import tileattn.search.StaAuthorsJson;
import tileattn.search.StrategyJson;
import tileattn.search.WindowStrategy;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.SafetensorsFile;

class SearchCommandTest {

    @TempDir
    Path dir;

    static final Shape3 VIDEO = new Shape3(3, 5, 7);

    /** Captures of steps 1 and 3, layers 0-1, 3 heads of different locality, video 3x5x7 + 2 text tokens. */
    private Path writeCaptures() throws Exception {
        Path captures = Files.createDirectories(dir.resolve("captures"));
        for (var c : ExampleCaptures.create(VIDEO, 2, 4, 2, 3, 8, 5).captures()) {
            if (c.step() % 2 == 1) {
                var qkv = c.load();
                CaptureFolder.write(captures.resolve("step" + c.step() + "_layer" + c.layer() + ".safetensors"), c.step(), c.layer(),
                        VIDEO, 2, qkv.q(), qkv.k(), qkv.v(), DType.BF16);
            }
        }
        return captures;
    }

    @Test
    void searchesCapturesAndTheStrategyRoundTripsIntoAttend() throws Exception {
        Path captures = writeCaptures();
        Path out = dir.resolve("out");
        CliRun run = CliRun.of("search", "--captures", captures.toString(), "--tile", "1,2,3", "--budget", "0.1",
                "--full-steps", "1", "--steps", "5", "--authors-format", "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("predicted attention speed-up"), run.out());
        for (String f : List.of("strategy.json", "strategy_sta.json", "report.md", "errors.csv", "window_volume.png", "error.png",
                "windows.png")) {
            assertTrue(Files.size(out.resolve(f)) > 0, f);
        }
        BufferedImage png = ImageIO.read(out.resolve("window_volume.png").toFile());
        assertTrue(png.getWidth() > 200 && png.getHeight() > 100);

        WindowStrategy strategy = StrategyJson.read(out.resolve("strategy.json"));
        assertEquals(5, strategy.steps());
        assertEquals(2, strategy.layers());
        assertEquals(3, strategy.heads());
        assertTrue(strategy.isFull(0), "step 0 forced dense");
        assertArrayEquals(strategy.windowsFor(1, 0), strategy.windowsFor(2, 0), "step 2 uses step 1's windows");
        assertEquals(strategy, StaAuthorsJson.read(out.resolve("strategy_sta.json"), strategy.layout()));
        String report = Files.readString(out.resolve("report.md"));
        assertTrue(report.contains("Predicted attention speed-up") && report.contains("## Per layer")
                && report.contains("### Step 3 (used for steps 3–4)"), report);

        // Every chosen window is within budget and no sparser candidate was (from the measured errors).
        List<String> lines = Files.readAllLines(out.resolve("errors.csv"));
        assertEquals("step,layer,head,window,attended_pairs,relative_l2_error,chosen", lines.getFirst());
        var rows = lines.subList(1, lines.size()).stream().map(l -> l.split(",")).toList();
        int chosenCount = 0;
        for (String[] chosen : rows) {
            if (!chosen[6].equals("1")) {
                continue;
            }
            chosenCount++;
            assertTrue(Double.parseDouble(chosen[5]) <= 0.1, String.join(",", chosen));
            assertEquals(Window.parse(chosen[3]), strategy.window(Integer.parseInt(chosen[0]), Integer.parseInt(chosen[1]),
                    Integer.parseInt(chosen[2])));
            for (String[] other : rows) {
                if (other[0].equals(chosen[0]) && other[1].equals(chosen[1]) && other[2].equals(chosen[2])
                        && Long.parseLong(other[4]) < Long.parseLong(chosen[4])) {
                    assertTrue(Double.parseDouble(other[5]) > 0.1, "sparser " + String.join(",", other) + " was under budget");
                }
            }
        }
        assertEquals(2 * 2 * 3, chosenCount, "one choice per searched step, layer and head");

        // attend with the strategy (either format) = attend with each head's window on its own.
        Path input = captures.resolve("step3_layer1.safetensors");
        FloatTensor viaStrategy = attend(input, "s.safetensors", "--windows", out.resolve("strategy.json").toString(),
                "--step", "4", "--layer", "1");
        FloatTensor viaAuthors = attend(input, "a.safetensors", "--windows", out.resolve("strategy_sta.json").toString(),
                "--tile", "1,2,3", "--step", "4", "--layer", "1");
        assertArrayEquals(viaStrategy.data(), viaAuthors.data());
        Window[] perHead = strategy.windowsFor(4, 1);
        int plane = viaStrategy.size() / 3;
        boolean someSparse = false;
        for (int h = 0; h < 3; h++) {
            Window w = perHead[h];
            someSparse |= !w.equals(Window.full(strategy.grid().tiles()));
            FloatTensor single = attend(input, "h" + h + ".safetensors", "--tile", "1,2,3",
                    "--window", w.t() + "," + w.h() + "," + w.w());
            for (int i = h * plane; i < (h + 1) * plane; i++) {
                assertEquals(single.data()[i], viaStrategy.data()[i], 0f, "head " + h + " element " + i);
            }
        }
        assertTrue(someSparse, "the test needs a head with a window smaller than the grid");

        String[] base = {"attend", "--method", "sta", "--input", input.toString(), "--output", dir.resolve("x.safetensors").toString(),
                "--windows", out.resolve("strategy.json").toString()};
        String noStep = CliRun.of(concat(base, "--layer", "1")).assertOneLineError();
        assertTrue(noStep.contains("strategy.json: its windows change over its 5 steps; choose one with --step (0..4)"), noStep);
        String noLayer = CliRun.of(concat(base, "--step", "1")).assertOneLineError();
        assertTrue(noLayer.contains("it has 2 layers; choose one with --layer (0..1)"), noLayer);
        String far = CliRun.of(concat(base, "--step", "5", "--layer", "0")).assertOneLineError();
        assertTrue(far.contains("--step 5 is outside the strategy's 5 steps"), far);
        String otherTile = CliRun.of(concat(base, "--step", "1", "--layer", "0", "--tile", "1,1,1")).assertOneLineError();
        assertTrue(otherTile.contains("in tiles of 1x2x3 but --tile is 1x1x1"), otherTile);
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    private FloatTensor attend(Path input, String output, String... options) {
        Path file = dir.resolve(output);
        String[] all = new String[7 + options.length];
        System.arraycopy(new String[]{"attend", "--method", "sta", "--input", input.toString(), "--output", file.toString()}, 0,
                all, 0, 7);
        System.arraycopy(options, 0, all, 7, options.length);
        CliRun run = CliRun.of(all);
        assertEquals(0, run.exitCode(), run.err());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return f.read("out");
        }
    }

    @Test
    void runsTheExampleWithBothRules() throws Exception {
        Path out = dir.resolve("example");
        CliRun ours = CliRun.of("search", "--video", "5,6,10", "--tile", "1,1,1", "--text-length", "3",
                "--target-sparsity", "0.6", "--out", out.toString());
        assertEquals(0, ours.exitCode(), ours.err());
        assertTrue(ours.out().contains("until sparsity >= 0.6"), ours.out());
        WindowStrategy s = StrategyJson.read(out.resolve("strategy.json"));
        assertEquals(TokenLayout.of(new Shape3(5, 6, 10), new Shape3(1, 1, 1), 3), s.layout());
        assertTrue(Files.readString(out.resolve("report.md")).contains("of video pairs skipped"));

        CliRun sta = CliRun.of("search", "--video", "5,6,10", "--tile", "1,1,1", "--text-length", "3", "--rule", "sta",
                "--out", dir.resolve("sta").toString());
        assertEquals(0, sta.exitCode(), sta.err());
        WindowStrategy st = StrategyJson.read(dir.resolve("sta").resolve("strategy.json"));
        assertTrue(st.windowCounts().keySet().stream().allMatch(tileattn.search.CandidateWindows.STA_HUNYUAN::contains),
                "the authors' rule picks only among their candidates: " + st.windowCounts());
    }

    @Test
    void showsAndConvertsAnExistingStrategy() throws Exception {
        TokenLayout layout = TokenLayout.of(new Shape3(10, 12, 20), new Shape3(2, 2, 2), 4);
        Window[][][] w = new Window[3][2][2];
        for (int s = 0; s < 3; s++) {
            for (int l = 0; l < 2; l++) {
                w[s][l][0] = s == 0 ? new Window(5, 6, 10) : new Window(5, 3, 3);
                w[s][l][1] = s == 0 ? new Window(5, 6, 10) : new Window(1, 6, 10);
            }
        }
        WindowStrategy strategy = new WindowStrategy(layout, w);
        Path authors = dir.resolve("theirs.json");
        StaAuthorsJson.write(strategy, authors);
        Path out = dir.resolve("shown");
        CliRun run = CliRun.of("search", "--show", authors.toString(), "--video", "10,12,20", "--tile", "2,2,2",
                "--text-length", "4", "--out", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("steps 0-0 dense") && run.out().contains("over steps 1-2"), run.out());
        assertEquals(strategy, StrategyJson.read(out.resolve("strategy.json")), "converted to tileattn's format");
        assertTrue(Files.size(out.resolve("window_volume.png")) > 0 && Files.size(out.resolve("windows.png")) > 0);

        CliRun again = CliRun.of("search", "--show", out.resolve("strategy.json").toString(), "--authors-format",
                "--out", dir.resolve("back").toString());
        assertEquals(0, again.exitCode(), again.err());
        assertEquals(Files.readString(authors), Files.readString(dir.resolve("back").resolve("strategy_sta.json")));

        String noVideo = CliRun.of("search", "--show", authors.toString(), "--out", out.toString()).assertOneLineError();
        assertTrue(noVideo.contains("give --video"), noVideo);
    }

    @Test
    void mistakesGiveOneLineErrors() throws Exception {
        Path captures = writeCaptures();
        String out = dir.resolve("o").toString();
        String both = CliRun.of("search", "--captures", captures.toString(), "--video", "3,5,7", "--out", out).assertOneLineError();
        assertTrue(both.contains("captures carry their own"), both);
        String staBudget = CliRun.of("search", "--rule", "sta", "--budget", "0.1", "--out", out).assertOneLineError();
        assertTrue(staBudget.contains("--budget and --target-sparsity belong to --rule ours"), staBudget);
        String grid = CliRun.of("search", "--rule", "sta", "--video", "3,4,6", "--tile", "1,2,2", "--out", out).assertOneLineError();
        assertTrue(grid.contains("5x6x10") && grid.contains("--candidates"), grid);
        String allDense = CliRun.of("search", "--captures", captures.toString(), "--tile", "1,2,3", "--full-steps", "4", "--out", out)
                .assertOneLineError();
        assertTrue(allDense.contains("nothing to search"), allDense);
        String badCandidate = CliRun.of("search", "--captures", captures.toString(), "--tile", "1,2,3", "--candidates", "9x1x1",
                "--out", out).assertOneLineError();
        assertTrue(badCandidate.contains("candidate 9x1x1 does not fit"), badCandidate);
        Files.writeString(captures.resolve("broken.safetensors"), "xx");
        String broken = CliRun.of("search", "--captures", captures.toString(), "--tile", "1,2,3", "--out", out).assertOneLineError();
        assertTrue(broken.contains("broken.safetensors"), broken);
    }

    @Test
    void deviceOptionFallsBackToTheCpuAndNamesWhy() throws Exception {
        CliRun cpu = CliRun.of("search", "--video", "3,4,6", "--tile", "1,2,2", "--text-length", "2", "--device", "cpu",
                "--out", dir.resolve("cpu").toString());
        assertEquals(0, cpu.exitCode(), cpu.err());
        assertTrue(cpu.out().contains("on cpu (fp32") && cpu.out().contains("as asked with --device cpu"), cpu.out());

        String headDim = CliRun.of("search", "--video", "3,4,6", "--tile", "1,2,2", "--device", "gpu",
                "--out", dir.resolve("gpu").toString()).assertOneLineError();
        assertTrue(headDim.contains("--device gpu: the GPU kernels take head dim 64 or 128, these inputs have 32"), headDim);

        Assumptions.assumeTrue(GpuSupport.whyUnusable().isPresent(), "a usable GPU: the fallback cannot be seen here");
        Path captures = Files.createDirectories(dir.resolve("d64"));
        Shape3 video = new Shape3(2, 4, 4);
        for (var c : ExampleCaptures.create(video, 1, 1, 1, 2, 64, 9).captures()) {
            var qkv = c.load();
            CaptureFolder.write(captures.resolve("c.safetensors"), c.step(), c.layer(), video, 1, qkv.q(), qkv.k(), qkv.v(),
                    DType.BF16);
        }
        CliRun auto = CliRun.of("search", "--captures", captures.toString(), "--tile", "1,2,2", "--out",
                dir.resolve("auto").toString());
        assertEquals(0, auto.exitCode(), auto.err());
        assertTrue(auto.out().contains("on cpu (fp32") && auto.out().contains("no usable GPU"), auto.out());
        String noGpu = CliRun.of("search", "--captures", captures.toString(), "--tile", "1,2,2", "--device", "gpu",
                "--out", dir.resolve("gpu").toString()).assertOneLineError();
        assertTrue(noGpu.contains("--device gpu: no usable GPU"), noGpu);
    }
}
