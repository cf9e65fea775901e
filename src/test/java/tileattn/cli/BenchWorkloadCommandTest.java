package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.cuda.GpuTests;
import tileattn.kernels.GpuSupport;

/** {@code bench workload}: option and file handling anywhere, the run itself on a GPU. */
class BenchWorkloadCommandTest {

    @TempDir
    Path dir;

    /** 2 steps x 2 layers x 2 heads in the STA authors' format, for a 2x3x2 tile grid. */
    private Path smallStrategy() throws Exception {
        Path file = dir.resolve("small.json");
        Files.writeString(file, """
                {"0_0_0": [2, 3, 2], "0_0_1": [2, 3, 2], "0_1_0": [2, 3, 2], "0_1_1": [2, 3, 2],
                 "1_0_0": [1, 3, 1], "1_0_1": [2, 1, 2], "1_1_0": [1, 1, 1], "1_1_1": [1, 3, 1]}""");
        return file;
    }

    @Test
    void badStrategiesAndOptionsAreOneLineErrors() throws Exception {
        String missing = CliRun.of("bench", "workload", "--strategy", dir.resolve("none.json").toString()).assertOneLineError();
        assertTrue(missing.contains("none.json: no such strategy file"), missing);
        Path strategy = smallStrategy();
        String misfit = CliRun.of("bench", "workload", "--strategy", strategy.toString()).assertOneLineError();
        assertTrue(misfit.contains("small.json") && misfit.contains("step 0, layer 0, head 0"), misfit);
        String headDim = CliRun.of("bench", "workload", "--head-dim", "32").assertOneLineError();
        assertTrue(headDim.contains("--head-dim must be 64 or 128"), headDim);
        assertTrue(CliRun.of("bench", "workload", "--repeat", "0").assertOneLineError().contains("--repeat"));
    }

    @Test
    void withoutAUsableGpuTheReasonIsGivenAfterTheStrategyIsRead() throws Exception {
        String why = GpuSupport.whyUnusable().orElse(null);
        org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "a usable GPU is present");
        String line = CliRun.of("bench", "workload", "--strategy", smallStrategy().toString(), "--video", "4,6,4",
                "--tile", "2,2,2", "--text-length", "3").assertOneLineError();
        assertTrue(line.contains("bench workload: no usable GPU: " + why), line);
    }

    @Test
    @Tag("gpu")
    void estimatesASmallStrategyOnTheGpu() throws Exception {
        GpuTests.openContext().close();
        Path tsv = dir.resolve("w.tsv");
        CliRun run = CliRun.of("bench", "workload", "--strategy", smallStrategy().toString(), "--video", "12,24,16",
                "--tile", "6,8,8", "--text-length", "5", "--head-dim", "64", "--batch", "1", "--validate", "2",
                "--tsv", tsv.toString());
        assertEquals(0, run.exitCode(), run.err() + run.out());
        assertTrue(run.out().contains("2x3x2 (full)") && run.out().contains("attention speed-up"), run.out());
        assertTrue(run.out().contains("measured / predicted"), run.out());
        String table = Files.readString(tsv);
        assertEquals(4, table.lines().filter(l -> l.startsWith("window\t")).count(), table);
        assertEquals(2, table.lines().filter(l -> l.startsWith("check\t")).count(), table);
        assertTrue(table.lines().filter(l -> l.startsWith("window\t") || l.startsWith("dense\t") || l.startsWith("check\t"))
                .allMatch(l -> l.endsWith("\t0")), "no bad elements: " + table);
    }
}
