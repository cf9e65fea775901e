package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.cpu.DoubleTensor;
import tileattn.cpu.ReferenceGradients;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.NamedTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.SafetensorsWriter;

/** {@code attend --grad-output}: out, dq, dk, dv (and dgate) against the literal double reference, and its errors. */
class AttendGradOutputTest {

    private static final double F32_TOLERANCE = 1e-5;

    /**
     * The reference sees the bf16 inputs and dout as read back, so the only extra error is rounding each written
     * value to bf16: with 8 significant bits and rounding to nearest, half an ulp is at most 2^-8 of the value, so
     * the relative L2 error of a whole tensor is at most 2^-8 (random data lands near 1.6e-3); the fp32 computation
     * adds less than {@link #F32_TOLERANCE} on top. A bound, not a statistical guess, so the test cannot flake.
     */
    private static final double BF16_TOLERANCE = Math.scalb(1.0, -8) + 2 * F32_TOLERANCE;

    @TempDir
    Path dir;

    private static FloatTensor random(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    /**
     * Writes q, k, v (and gate) to in.safetensors and dout to dout.safetensors in {@code dtype}; returns them as
     * read back, i.e. rounded to the dtype, as double tensors keyed by name.
     */
    private Map<String, DoubleTensor> writeInputs(DType dtype, int[] shape, boolean gate, long seed) {
        Random rnd = new Random(seed);
        List<NamedTensor> inputs = new ArrayList<>();
        for (String name : gate ? new String[]{"q", "k", "v", "gate"} : new String[]{"q", "k", "v"}) {
            inputs.add(new NamedTensor(name, random(rnd, shape), dtype));
        }
        SafetensorsWriter.write(dir.resolve("in.safetensors"), inputs);
        SafetensorsWriter.write(dir.resolve("dout.safetensors"),
                List.of(new NamedTensor("dout", random(rnd, shape), dtype)));
        Map<String, DoubleTensor> read = new LinkedHashMap<>();
        try (SafetensorsFile in = SafetensorsFile.open(dir.resolve("in.safetensors"));
             SafetensorsFile dOut = SafetensorsFile.open(dir.resolve("dout.safetensors"))) {
            for (String name : in.names()) {
                read.put(name, DoubleTensor.of(in.read(name)));
            }
            read.put("dout", DoubleTensor.of(dOut.read("dout")));
        }
        return read;
    }

    private CliRun attend(String... options) {
        List<String> args = new ArrayList<>(List.of("attend", "--input", dir.resolve("in.safetensors").toString(),
                "--output", dir.resolve("out.safetensors").toString(), "--grad-output",
                dir.resolve("dout.safetensors").toString()));
        args.addAll(List.of(options));
        return CliRun.of(args.toArray(String[]::new));
    }

    /** Checks the output file holds exactly the expected tensors, in {@code dtype}, each close to its reference. */
    private void assertOutputs(Map<String, DoubleTensor> expected, DType dtype, double tolerance) {
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("out.safetensors"))) {
            assertEquals(List.copyOf(expected.keySet()), f.names());
            for (var e : expected.entrySet()) {
                assertEquals(dtype, f.info(e.getKey()).dtype(), e.getKey());
                FloatTensor reference = e.getValue().toFloat();
                assertTrue(java.util.Arrays.stream(e.getValue().data()).anyMatch(x -> x != 0),
                        e.getKey() + ": the reference is zero, the comparison would be empty");
                double err = Measure.relativeL2(f.read(e.getKey()), reference);
                assertTrue(err < tolerance, e.getKey() + ": relative L2 error " + err + " >= " + tolerance);
            }
        }
    }

    private static Map<String, DoubleTensor> named(DoubleTensor out, ReferenceGradients.Gradients g) {
        Map<String, DoubleTensor> m = new LinkedHashMap<>();
        m.put("out", out);
        m.put("dq", g.dq());
        m.put("dk", g.dk());
        m.put("dv", g.dv());
        if (g.dgate() != null) {
            m.put("dgate", g.dgate());
        }
        return m;
    }

    @Test
    void denseInF32IgnoringAGate() {
        Map<String, DoubleTensor> t = writeInputs(DType.F32, new int[]{2, 2, 23, 5}, true, 81);
        CliRun run = attend("--method", "dense", "--scale", "0.6");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("wrote out, dq, dk, dv [2, 2, 23, 5] F32"), run.out());
        assertTrue(run.err().contains("ignoring tensor 'gate'"), run.err());
        DoubleTensor q = t.get("q"), k = t.get("k"), v = t.get("v");
        float scale = 0.6f;
        assertOutputs(named(ReferenceGradients.denseForward(q, k, v, scale).out(),
                ReferenceGradients.dense(q, k, v, t.get("dout"), scale)), DType.F32, F32_TOLERANCE);
    }

    @Test
    void staWithTextAndPerHeadWindowsInF32AndBf16() throws IOException {
        TokenLayout layout = TokenLayout.of(new Shape3(5, 4, 6), new Shape3(2, 2, 4), 3); // grid 3x2x2, partial tiles
        Path windows = dir.resolve("windows.json");
        Files.writeString(windows, "{\"windows\": [[3, 1, 1], [1, 2, 1]]}");
        Window[] w = {new Window(3, 1, 1), new Window(1, 2, 1)};
        for (DType dtype : new DType[]{DType.F32, DType.BF16}) {
            Map<String, DoubleTensor> t = writeInputs(dtype, new int[]{1, 2, layout.sequenceLength(), 4}, false, 82);
            CliRun run = attend("--method", "sta", "--video", "5,4,6", "--tile", "2,2,4", "--text-length", "3",
                    "--windows", windows.toString());
            assertEquals(0, run.exitCode(), run.err());
            DoubleTensor q = t.get("q"), k = t.get("k"), v = t.get("v");
            double scale = 1 / Math.sqrt(4);
            assertOutputs(named(ReferenceGradients.staForward(q, k, v, layout, w, scale).out(),
                    ReferenceGradients.sta(q, k, v, t.get("dout"), layout, w, scale)), dtype,
                    dtype == DType.F32 ? F32_TOLERANCE : BF16_TOLERANCE);
        }
    }

    @Test
    void vsaWithGateInF32AndBf16WritesDgate() {
        TileGrid grid = new TileGrid(new Shape3(4, 5, 6), new Shape3(2, 2, 4)); // 2x3x2 tiles, partial along H, W
        for (DType dtype : new DType[]{DType.F32, DType.BF16}) {
            Map<String, DoubleTensor> t = writeInputs(dtype, new int[]{2, 2, grid.videoTokens(), 4}, true, 83);
            CliRun run = attend("--method", "vsa", "--video", "4,5,6", "--tile", "2,2,4", "--topk", "4");
            assertEquals(0, run.exitCode(), run.err());
            assertTrue(run.out().contains("wrote out, dq, dk, dv, dgate"), run.out());
            DoubleTensor q = t.get("q"), k = t.get("k"), v = t.get("v"), gate = t.get("gate");
            double scale = 1 / Math.sqrt(4);
            assertOutputs(named(ReferenceGradients.vsaForward(q, k, v, gate, grid, 4, scale).out(),
                    ReferenceGradients.vsa(q, k, v, gate, t.get("dout"), grid, 4, scale)), dtype,
                    dtype == DType.F32 ? F32_TOLERANCE : BF16_TOLERANCE);
        }
    }

    @Test
    void vsaWithoutGateWritesNoDgate() {
        TileGrid grid = new TileGrid(new Shape3(3, 4, 4), new Shape3(2, 2, 2));
        Map<String, DoubleTensor> t = writeInputs(DType.F32, new int[]{1, 1, grid.videoTokens(), 3}, false, 84);
        CliRun run = attend("--method", "vsa", "--video", "3,4,4", "--tile", "2,2,2", "--sparsity", "0.5");
        assertEquals(0, run.exitCode(), run.err());
        int topK = 4; // ceil(0.5 * 8 tiles)
        DoubleTensor q = t.get("q"), k = t.get("k"), v = t.get("v");
        double scale = 1 / Math.sqrt(3);
        assertOutputs(named(ReferenceGradients.vsaForward(q, k, v, null, grid, topK, scale).out(),
                ReferenceGradients.vsa(q, k, v, null, t.get("dout"), grid, topK, scale)), DType.F32, F32_TOLERANCE);
    }

    @Test
    void badGradientFilesGiveOneLineErrors() {
        int[] shape = {1, 2, 12, 3};
        writeInputs(DType.F32, shape, false, 85);
        Path gradFile = dir.resolve("dout.safetensors");
        Random rnd = new Random(86);

        SafetensorsWriter.write(gradFile, List.of(new NamedTensor("grad", random(rnd, shape), DType.F32)));
        String missing = attend("--method", "dense").assertOneLineError();
        assertTrue(missing.contains("dout.safetensors") && missing.contains("no tensor named 'dout'")
                && missing.contains("grad"), missing);

        SafetensorsWriter.write(gradFile, List.of(new NamedTensor("dout", random(rnd, 1, 2, 12, 4), DType.F32)));
        String shapeMsg = attend("--method", "dense").assertOneLineError();
        assertTrue(shapeMsg.contains("'dout' has shape [1, 2, 12, 4]") && shapeMsg.contains("[1, 2, 12, 3]"), shapeMsg);

        FloatTensor nan = random(rnd, shape);
        nan.data()[3 * 12 + 4] = Float.NaN;
        SafetensorsWriter.write(gradFile, List.of(new NamedTensor("dout", nan, DType.BF16)));
        String nanMsg = attend("--method", "dense").assertOneLineError();
        assertTrue(nanMsg.contains("holds NaN at index [0, 1, 1, 1]"), nanMsg);

        CliRun gone = CliRun.of("attend", "--method", "dense", "--input", dir.resolve("in.safetensors").toString(),
                "--output", dir.resolve("out.safetensors").toString(), "--grad-output",
                dir.resolve("absent.safetensors").toString());
        String goneMsg = gone.assertOneLineError();
        assertTrue(goneMsg.contains("absent.safetensors") && goneMsg.contains("no such file"), goneMsg);
        assertFalse(Files.exists(dir.resolve("out.safetensors")), "no output is written when the gradient is bad");
    }
}
