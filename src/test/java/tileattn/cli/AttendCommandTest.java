package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.cpu.ReferenceAttention;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;

class AttendCommandTest {

    @TempDir
    Path dir;

    private static FloatTensor random(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    /** Writes q, k, v (and gate when asked) and returns them as read back, i.e. rounded to the dtype. */
    private FloatTensor[] writeInput(Path file, DType dtype, int[] shape, boolean gate, Map<String, String> meta,
                                     long seed) {
        Random rnd = new Random(seed);
        List<NamedTensor> tensors = new ArrayList<>();
        for (String name : gate ? new String[]{"q", "k", "v", "gate"} : new String[]{"q", "k", "v"}) {
            tensors.add(new NamedTensor(name, random(rnd, shape), dtype));
        }
        SafetensorsWriter.write(file, tensors, meta);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return new FloatTensor[]{f.read("q"), f.read("k"), f.read("v"), gate ? f.read("gate") : null};
        }
    }

    private static FloatTensor readOut(Path file, DType expectedType) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("out"), f.names());
            assertEquals(expectedType, f.info("out").dtype());
            return f.read("out");
        }
    }

    /** Relative L2 difference; outputs stored in 16-bit types are compared at their precision. */
    private static void assertClose(FloatTensor expected, FloatTensor actual, double relL2) {
        assertArrayEquals(expected.shape(), actual.shape());
        double err = Measure.relativeL2(actual, expected);
        assertTrue(err < relL2, "relative L2 error " + err + " >= " + relL2);
    }

    @Test
    void staWithPerHeadWindowsTextAndPartialTilesInBf16() throws IOException {
        Shape3 video = new Shape3(5, 9, 7);
        TokenLayout layout = TokenLayout.of(video, new Shape3(2, 4, 3), 4); // grid 3x3x3, partial on every axis
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        FloatTensor[] t = writeInput(in, DType.BF16, new int[]{1, 3, layout.sequenceLength(), 8}, false, Map.of(), 1);
        Path windows = dir.resolve("windows.json");
        Files.writeString(windows, "{\"windows\": [[1,1,1], [3,1,3], [1,3,3]]}");
        CliRun run = CliRun.of("attend", "--method", "sta", "--input", in.toString(), "--output", out.toString(),
                "--video", "5,9,7", "--tile", "2,4,3", "--windows", windows.toString(), "--text-length", "4");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("wrote out [1, 3, " + layout.sequenceLength() + ", 8] BF16"), run.out());
        Window[] w = {new Window(1, 1, 1), new Window(3, 1, 3), new Window(1, 3, 3)};
        FloatTensor expected = ReferenceAttention.sta(t[0], t[1], t[2], layout, w, 1 / Math.sqrt(8));
        assertClose(expected, readOut(out, DType.BF16), 4e-3);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(Map.of("method", "sta", "video", "5,9,7", "text_length", "4"), f.metadata());
        }
    }

    @Test
    void staWithOneWindowAndTheDefaultTile() {
        Shape3 video = new Shape3(7, 17, 9); // default tile 6,8,8 gives a 2x3x2 grid with partial tiles
        TokenLayout layout = TokenLayout.of(video, AttendCommand.STA_TILE, 0);
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        FloatTensor[] t = writeInput(in, DType.F32, new int[]{1, 2, layout.sequenceLength(), 4}, false, Map.of(), 2);
        CliRun run = CliRun.of("attend", "--method", "sta", "--input", in.toString(), "--output", out.toString(),
                "--video", "7,17,9", "--window", "1,3,1", "--scale", "0.3");
        assertEquals(0, run.exitCode(), run.err());
        Window w = new Window(1, 3, 1);
        assertClose(ReferenceAttention.sta(t[0], t[1], t[2], layout, new Window[]{w, w}, 0.3), readOut(out, DType.F32),
                1e-5);
    }

    @Test
    void vsaWithGateAndSparsityInF16() {
        Shape3 video = new Shape3(6, 5, 8);
        TileGrid grid = new TileGrid(video, AttendCommand.VSA_TILE); // default 4,4,4: 2x2x2 tiles, partial
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        FloatTensor[] t = writeInput(in, DType.F16, new int[]{2, 2, video.volume(), 8}, true, Map.of(), 3);
        CliRun run = CliRun.of("attend", "--method", "vsa", "--input", in.toString(), "--output", out.toString(),
                "--video", "6,5,8", "--sparsity", "0.7");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("top-3 of 8 tiles, gated"), run.out());
        FloatTensor expected = ReferenceAttention.vsa(t[0], t[1], t[2], t[3], grid, 3, 1 / Math.sqrt(8)).out();
        assertClose(expected, readOut(out, DType.F16), 1e-3);
    }

    @Test
    void denseAndVideoFromMetadata() {
        Shape3 video = new Shape3(3, 4, 5);
        TokenLayout layout = TokenLayout.of(video, new Shape3(2, 2, 2), 3);
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        FloatTensor[] t = writeInput(in, DType.F32, new int[]{1, 2, 63, 5}, false,
                Map.of("video", "3,4,5", "text_length", "3"), 4);
        CliRun dense = CliRun.of("attend", "--method", "dense", "--input", in.toString(), "--output", out.toString());
        assertEquals(0, dense.exitCode(), dense.err());
        assertClose(ReferenceAttention.dense(t[0], t[1], t[2], 1 / Math.sqrt(5)), readOut(out, DType.F32), 1e-5);

        CliRun sta = CliRun.of("attend", "--method", "sta", "--input", in.toString(), "--output", out.toString(),
                "--tile", "2,2,2", "--window", "1,1,1");
        assertEquals(0, sta.exitCode(), sta.err());
        Window w = new Window(1, 1, 1);
        assertClose(ReferenceAttention.sta(t[0], t[1], t[2], layout, new Window[]{w, w}, 1 / Math.sqrt(5)),
                readOut(out, DType.F32), 1e-5);
    }

    private CliRun attendOn(Path in, String... extra) {
        List<String> args = new ArrayList<>(List.of("attend", "--input", in.toString(), "--output",
                dir.resolve("out.safetensors").toString()));
        args.addAll(List.of(extra));
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void badInputsGiveOneLineAndExitCode2() throws IOException {
        Path in = dir.resolve("in.safetensors");
        writeInput(in, DType.F32, new int[]{1, 2, 60, 4}, false, Map.of(), 5);

        String shape = attendOn(in, "--method", "sta", "--video", "3,4,6", "--window", "1,1,1", "--tile", "2,2,2",
                "--text-length", "1").assertOneLineError();
        assertTrue(shape.contains("S=60") && shape.contains("+ 1 text tokens = 73"), shape);

        String dense = attendOn(in, "--method", "dense", "--video", "3,4,6").assertOneLineError();
        assertTrue(dense.contains("S=60") && dense.contains("3x4x6 (72 tokens) + 0 text tokens"), dense);

        String big = attendOn(in, "--method", "sta", "--video", "3,4,5", "--tile", "1,1,1", "--window", "5,1,1",
                "--text-length", "0").assertOneLineError();
        assertTrue(big.contains("head 0") && big.contains("larger") && big.contains("along T"), big);
        Path windows = dir.resolve("w.json");
        Files.writeString(windows, "{\"windows\": [[1,1,1], [1,2,1]]}");
        String perHead = attendOn(in, "--method", "sta", "--video", "3,4,5", "--tile", "1,1,1", "--windows",
                windows.toString()).assertOneLineError();
        assertTrue(perHead.contains("head 1") && perHead.contains("even"), perHead);

        String topK = attendOn(in, "--method", "vsa", "--video", "3,4,5", "--tile", "3,2,5", "--topk", "3")
                .assertOneLineError();
        assertTrue(topK.contains("1..2") && topK.contains("got 3"), topK);

        String gone = attendOn(dir.resolve("missing.safetensors"), "--method", "dense").assertOneLineError();
        assertTrue(gone.contains("missing.safetensors") && gone.contains("no such file"), gone);

        Path noV = dir.resolve("nov.safetensors");
        SafetensorsWriter.write(noV, List.of(new NamedTensor("q", random(new Random(1), 1, 1, 2, 2), DType.F32),
                new NamedTensor("k", random(new Random(2), 1, 1, 2, 2), DType.F32)));
        String missing = attendOn(noV, "--method", "dense").assertOneLineError();
        assertTrue(missing.contains("no tensor named 'v'") && missing.contains("q, k"), missing);

        Path nan = dir.resolve("nan.safetensors");
        FloatTensor q = random(new Random(3), 1, 1, 4, 2);
        q.data()[5] = Float.NaN;
        SafetensorsWriter.write(nan, List.of(new NamedTensor("q", q, DType.BF16), new NamedTensor("k", q, DType.BF16),
                new NamedTensor("v", q, DType.BF16)));
        String nanMsg = attendOn(nan, "--method", "dense").assertOneLineError();
        assertTrue(nanMsg.contains("q holds NaN at index [0, 0, 2, 1]"), nanMsg);

        Path badJson = dir.resolve("bad.json");
        Files.writeString(badJson, "{\"windows\": [[1,1]]}");
        String json = attendOn(in, "--method", "sta", "--video", "3,4,5", "--windows", badJson.toString())
                .assertOneLineError();
        assertTrue(json.contains("bad.json") && json.contains("head 0"), json);
    }

    @Test
    void optionMistakesGiveAUsageHint() {
        Path in = dir.resolve("in.safetensors");
        writeInput(in, DType.F32, new int[]{1, 1, 60, 4}, false, Map.of(), 6);
        String[][] cases = {
            {"--method", "sparse"},
            {"--method", "sta", "--video", "3,4,5", "--window", "1,1,1", "--windows", "x.json"},
            {"--method", "sta", "--video", "3,4,5"},
            {"--method", "sta", "--video", "3,4", "--window", "1,1,1"},
            {"--method", "dense", "--topk", "2"},
            {"--method", "vsa", "--video", "3,4,5"},
            {"--method", "vsa", "--video", "3,4,5", "--topk", "1", "--text-length", "2"},
            {"--method", "sta", "--window", "1,1,1"},
        };
        for (String[] c : cases) {
            CliRun run = attendOn(in, c);
            String line = run.assertOneLineError();
            assertTrue(run.err().contains("Try 'tileattn attend --help'"), String.join(" ", c) + " -> " + run.err());
            assertFalse(line.isBlank());
        }
        assertTrue(attendOn(in, "--method", "sta", "--window", "1,1,1").err().contains("needs --video"));
        assertTrue(attendOn(in, "--method", "sta", "--video", "3,4", "--window", "1,1,1").err()
                .contains("three comma-separated integers"));
    }

    @Test
    void theDeviceOptionSaysWhereAttentionRan() {
        Path in = dir.resolve("in.safetensors");
        writeInput(in, DType.F32, new int[]{1, 2, 60, 4}, false, Map.of("video", "3,4,5"), 7);
        CliRun cpu = attendOn(in, "--method", "dense", "--device", "cpu");
        assertEquals(0, cpu.exitCode(), cpu.err());
        assertTrue(cpu.out().contains("device: CPU (as asked with --device cpu)"), cpu.out());

        // d = 4 has no GPU kernel, so auto computes on the CPU wherever it runs, and says why
        CliRun auto = attendOn(in, "--method", "sta", "--tile", "1,2,5", "--window", "1,1,1");
        assertEquals(0, auto.exitCode(), auto.err());
        assertTrue(auto.out().contains("device: CPU (") && auto.out().contains("head dim"), auto.out());

        // VSA and the backward follow the same rule: the GPU only lacks kernels for this head dim
        CliRun vsa = attendOn(in, "--method", "vsa", "--tile", "3,2,5", "--topk", "1");
        assertEquals(0, vsa.exitCode(), vsa.err());
        assertTrue(vsa.out().contains("device: CPU (") && vsa.out().contains("head dim"), vsa.out());

        String vsaOnGpu = attendOn(in, "--method", "vsa", "--tile", "3,2,5", "--topk", "1", "--device", "gpu")
                .assertOneLineError();
        assertTrue(vsaOnGpu.contains("--device gpu: the GPU kernels take head dim 64 or 128, the input has d=4"),
                vsaOnGpu);
        String smallD = attendOn(in, "--method", "dense", "--device", "gpu").assertOneLineError();
        assertTrue(smallD.contains("--device gpu: the GPU kernels take head dim 64 or 128, the input has d=4"), smallD);
        assertEquals(DType.F16, AttendCommand.gpuType(DType.F16));
        assertEquals(DType.BF16, AttendCommand.gpuType(DType.F32));
        assertEquals(DType.BF16, AttendCommand.gpuType(DType.BF16));
    }

    @Test
    void deviceGpuWithoutAUsableGpuNamesTheReason() {
        String why = tileattn.kernels.GpuSupport.whyUnusable().orElse(null);
        org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "a usable GPU is present");
        Path in = dir.resolve("in.safetensors");
        writeInput(in, DType.BF16, new int[]{1, 1, 60, 64}, false, Map.of(), 8);
        String line = attendOn(in, "--method", "dense", "--device", "gpu").assertOneLineError();
        assertTrue(line.contains("--device gpu: no usable GPU: " + why), line);
    }

    @Test
    void verbosePrintsTheStackTrace() {
        CliRun run = CliRun.of("attend", "--verbose", "--method", "dense", "--input",
                dir.resolve("none.safetensors").toString(), "--output", dir.resolve("o.safetensors").toString());
        assertEquals(2, run.exitCode());
        assertTrue(run.err().contains("\tat "), run.err());
    }
}
