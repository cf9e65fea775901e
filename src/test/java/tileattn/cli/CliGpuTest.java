package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.cpu.ReferenceAttention;
import tileattn.cuda.GpuTests;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;

/** {@code attend} and {@code demo} on the GPU: the output is right and the commands say where they ran. */
@Tag("gpu")
class CliGpuTest {

    @TempDir
    Path dir;

    @BeforeAll
    static void needsAGpu() {
        GpuTests.openContext().close();
    }

    private static FloatTensor gaussian(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    @Test
    void attendComputesStaOnTheGpuInTheFilesPrecision() {
        Shape3 video = new Shape3(5, 9, 11);
        TokenLayout layout = TokenLayout.of(video, new Shape3(2, 4, 4), 6);
        int[] shape = {1, 2, layout.sequenceLength(), 64};
        Random rnd = new Random(51);
        Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
        SafetensorsWriter.write(in, List.of(new NamedTensor("q", gaussian(rnd, shape), DType.F16),
                new NamedTensor("k", gaussian(rnd, shape), DType.F16), new NamedTensor("v", gaussian(rnd, shape), DType.F16)),
                Map.of("video", "5,9,11", "text_length", "6"));
        FloatTensor q, k, v;
        try (SafetensorsFile f = SafetensorsFile.open(in)) {
            q = f.read("q");
            k = f.read("k");
            v = f.read("v");
        }
        CliRun run = CliRun.of("attend", "--device", "gpu", "--method", "sta", "--input", in.toString(), "--output",
                out.toString(), "--tile", "2,4,4", "--window", "3,1,3");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("device: GPU: ") && run.out().contains("F16"), run.out());
        FloatTensor got;
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(DType.F16, f.info("out").dtype());
            got = f.read("out");
        }
        Window w = new Window(3, 1, 3);
        FloatTensor expected = ReferenceAttention.sta(q, k, v, layout, new Window[]{w, w}, 1 / Math.sqrt(64));
        double err = Measure.relativeL2(got, expected);
        assertTrue(err < 2e-3, "fp16 inputs compute in fp16: relative L2 error " + err);

    }

    /** Under the default --device auto, VSA and the gradients run on the GPU too, and agree with --device cpu. */
    @Test
    void attendRunsVsaWithGradientsOnTheGpuUnderAuto() {
        int[] shape = {1, 2, 4 * 8 * 8, 64};
        Random rnd = new Random(52);
        Path in = dir.resolve("vsa-in.safetensors"), dout = dir.resolve("dout.safetensors");
        SafetensorsWriter.write(in, List.of(new NamedTensor("q", gaussian(rnd, shape), DType.BF16),
                new NamedTensor("k", gaussian(rnd, shape), DType.BF16), new NamedTensor("v", gaussian(rnd, shape), DType.BF16)),
                Map.of("video", "4,8,8"));
        SafetensorsWriter.write(dout, List.of(new NamedTensor("dout", gaussian(rnd, shape), DType.BF16)), Map.of());
        FloatTensor[] onGpu = attendVsa(in, dout, "auto"), onCpu = attendVsa(in, dout, "cpu");
        String[] names = {"out", "dq", "dk", "dv"};
        for (int i = 0; i < names.length; i++) {
            double err = Measure.relativeL2(onGpu[i], onCpu[i]);
            assertTrue(err < 2e-2, names[i] + ": GPU (bf16) against CPU (fp32) relative L2 " + err);
        }
    }

    private FloatTensor[] attendVsa(Path in, Path dout, String device) {
        Path out = dir.resolve("vsa-out-" + device + ".safetensors");
        CliRun run = CliRun.of("attend", "--device", device, "--method", "vsa", "--input", in.toString(), "--output",
                out.toString(), "--tile", "2,4,4", "--topk", "5", "--grad-output", dout.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains(device.equals("cpu") ? "device: CPU" : "device: GPU"), run.out());
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            return new FloatTensor[]{f.read("out"), f.read("dq"), f.read("dk"), f.read("dv")};
        }
    }

    @Test
    void demoRunsEveryRowOnTheGpu() {
        CliRun run = CliRun.of("demo", "--device", "gpu", "--video", "4,16,16", "--heads", "2", "--head-dim", "64",
                "--sta-tile", "2,8,8", "--window", "2,2,2", "--window", "1,1,1", "--vsa-tile", "2,8,8", "--topk", "8",
                "--topk", "2", "--no-dit");
        assertEquals(0, run.exitCode(), run.err());
        String out = run.out();
        assertTrue(out.startsWith("device: GPU ("), out);
        assertFalse(out.contains("DiT step"), "--no-dit skips the DiT step: " + out);
        List<String> rows = out.lines().filter(l -> l.startsWith("dense") || l.startsWith("sta") || l.startsWith("vsa"))
                .toList();
        assertEquals(5, rows.size(), out);
        rows.forEach(r -> assertTrue(r.contains(" gpu "), r));
        double whole = lastNumber(rows.get(1)), tiny = lastNumber(rows.get(2)), allTiles = lastNumber(rows.get(3));
        assertTrue(whole < 1e-2, "the window covering the grid is dense attention, up to bf16 rounding: " + whole);
        assertTrue(tiny > 1e-2 && tiny < 1, "one tile misses some attention: " + tiny);
        assertTrue(allTiles < 2e-2, "VSA over all tiles with gate 0 is dense, up to bf16 rounding: " + allTiles);
    }

    @Test
    void demoEndsWithADitStepAgreeingWithTheCpuModel() {
        CliRun run = CliRun.of("demo", "--device", "gpu", "--video", "2,8,8", "--heads", "1", "--head-dim", "64",
                "--sta-tile", "2,8,8", "--window", "1,1,1", "--vsa-tile", "2,8,8", "--topk", "1");
        assertEquals(0, run.exitCode(), run.err());
        String out = run.out();
        int dit = out.indexOf("DiT step on the GPU");
        assertTrue(dit >= 0, out);
        List<String> rows = out.substring(dit).lines()
                .filter(l -> l.startsWith("dense") || l.startsWith("sta") || l.startsWith("vsa")).toList();
        assertEquals(3, rows.size(), out);
        rows.forEach(r -> assertTrue(lastNumber(r) < 1e-2, "GPU step against the CPU model: " + r));
    }

    private static double lastNumber(String row) {
        String[] cells = row.trim().split("\\s+");
        return Double.parseDouble(cells[cells.length - 1]);
    }
}
