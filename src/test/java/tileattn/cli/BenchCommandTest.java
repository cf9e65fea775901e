package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchCommandTest {

    private static boolean numpyAvailable() {
        try {
            Process p = new ProcessBuilder("python3", "-c", "import numpy").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (Exception e) {
            return false;
        }
    }

    private static final String[] SMALL = {"bench", "--video", "2,4,8;2,8,8", "--heads", "1", "--head-dim", "16",
        "--repeat", "1", "--sta-tile", "1,4,4"};

    @Test
    void javaAgainstNumpyOnTheSameInputs() {
        assumeTrue(numpyAvailable(), "python3 with numpy is needed for the baseline");
        CliRun run = CliRun.of(SMALL);
        assertEquals(0, run.exitCode(), run.err());
        String out = run.out();
        String row = out.lines().filter(l -> l.startsWith("2x8x8")).findFirst().orElseThrow(() -> new AssertionError(out));
        String[] cells = row.trim().split("\\s+");
        assertEquals("128", cells[1], row);
        assertFalse(row.contains("n/a"), row);
        double diff = Double.parseDouble(cells[cells.length - 1]);
        assertTrue(diff < 1e-5, "Java and numpy compute the same attention: " + diff);
        // STA sweep on the last video: grid 2x2x2, the whole grid first (0% sparse), then 1x1x1.
        assertTrue(out.contains("STA, video 2x8x8 in tiles 1x4x4"), out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("2x2x2") && l.contains("0.0%")), out);
        assertTrue(out.lines().anyMatch(l -> l.startsWith("1x1x1") && l.contains("87.5%")), out);
    }

    @Test
    void missingPythonIsReportedAndJavaStillRuns() {
        String[] args = java.util.Arrays.copyOf(SMALL, SMALL.length + 2);
        args[SMALL.length] = "--python";
        args[SMALL.length + 1] = "/nonexistent/python3";
        CliRun run = CliRun.of(args);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("numpy baseline unavailable: cannot start /nonexistent/python3"), run.out());
        assertTrue(run.out().lines().anyMatch(l -> l.startsWith("2x8x8") && l.contains("n/a")), run.out());
    }

    @Test
    void aFailingBaselineScriptIsReportedWithItsLastErrorLine(@TempDir Path dir) throws java.io.IOException {
        Path script = dir.resolve("broken.py");
        Files.writeString(script, "import sys\nprint('working', file=sys.stderr)\nraise RuntimeError('boom')\n");
        String[] args = java.util.Arrays.copyOf(SMALL, SMALL.length + 2);
        args[SMALL.length] = "--numpy-script";
        args[SMALL.length + 1] = script.toString();
        CliRun run = CliRun.of(args);
        assumeTrue(!run.out().contains("cannot start python3"), "needs python3");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("numpy baseline unavailable: python3 broken.py failed: RuntimeError: boom"),
                run.out());
    }

    @Test
    void markdownTables() {
        String[] args = java.util.Arrays.copyOf(SMALL, SMALL.length + 2);
        args[SMALL.length] = "--no-numpy";
        args[SMALL.length + 1] = "--markdown";
        CliRun run = CliRun.of(args);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("| video | tokens | java ms |"), run.out());
        assertTrue(run.out().contains("numpy baseline skipped (--no-numpy)"), run.out());
    }

    @Test
    void badWindowIsRejected() {
        String[] args = java.util.Arrays.copyOf(SMALL, SMALL.length + 2);
        args[SMALL.length] = "--window";
        args[SMALL.length + 1] = "1,3,3";
        assertTrue(CliRun.of(args).assertOneLineError().contains("larger"));
    }
}
