package tileattn.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.SafetensorsFile;

/**
 * Runs scripts/numpy_dense.py (shipped inside the jar) with a Python that has numpy: dense attention on the same
 * inputs the Java side times, so both are measured in one run on the same machine.
 */
final class NumpyBaseline {

    static final String SCRIPT_RESOURCE = "/scripts/numpy_dense.py";

    private final String python;
    private final Path script;
    private String version = "?";

    private NumpyBaseline(String python, Path script) {
        this.python = python;
        this.script = script;
    }

    /** Uses {@code script} when given, else extracts the script from the jar into {@code workDir}. */
    static NumpyBaseline prepare(String python, Path script, Path workDir) throws IOException {
        if (script != null) {
            if (!Files.isRegularFile(script)) {
                throw new IllegalArgumentException(script + ": no such numpy script");
            }
            return new NumpyBaseline(python, script);
        }
        Path extracted = workDir.resolve("numpy_dense.py");
        try (InputStream in = NumpyBaseline.class.getResourceAsStream(SCRIPT_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the jar lacks " + SCRIPT_RESOURCE + "; rebuild with mvn package");
            }
            Files.copy(in, extracted, StandardCopyOption.REPLACE_EXISTING);
        }
        return new NumpyBaseline(python, extracted);
    }

    /** The numpy version the last run reported. */
    String version() {
        return version;
    }

    /**
     * Dense attention on the F32 q, k, v of {@code input}: one untimed warm-up and one timed run inside the
     * script, whose output goes through {@code output}. The time excludes Python's start and file reading.
     */
    Measure.Timed<FloatTensor> run(Path input, Path output) throws IOException {
        try {
            double millis = runScript(input, output);
            try (SafetensorsFile f = SafetensorsFile.open(output)) {
                return new Measure.Timed<>(f.read("out"), millis);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for " + python, e);
        }
    }

    private double runScript(Path input, Path output) throws IOException, InterruptedException {
        List<String> cmd = List.of(python, script.toString(), input.toString(), "--repeat", "1",
                "--output", output.toString());
        // stderr goes to a file so that a chatty failure cannot fill the pipe while stdout is being read.
        Path errors = Files.createTempFile("tileattn-numpy", ".err");
        try {
            Process p;
            try {
                p = new ProcessBuilder(cmd).redirectError(errors.toFile()).start();
            } catch (IOException e) {
                throw new IOException("cannot start " + python + ": " + e.getMessage(), e);
            }
            p.getOutputStream().close();
            byte[] stdout = p.getInputStream().readAllBytes();
            return parse(p.waitFor(), stdout, Files.readString(errors));
        } finally {
            Files.deleteIfExists(errors);
        }
    }

    private double parse(int exitCode, byte[] stdout, String stderr) throws IOException {
        if (exitCode != 0) {
            String why = stderr.strip();
            String last = why.isEmpty() ? "exit code " + exitCode : why.lines().reduce((a, b) -> b).orElse(why);
            throw new IOException(python + " " + script.getFileName() + " failed: " + last);
        }
        JsonNode json = new ObjectMapper().readTree(new String(stdout, StandardCharsets.UTF_8));
        if (json == null || !json.has("median_ms")) {
            throw new IOException(python + " " + script.getFileName() + " printed no timing");
        }
        version = json.path("numpy").asText("?");
        return json.get("median_ms").asDouble();
    }
}
