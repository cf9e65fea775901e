package tileattn.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tileattn.kernels.GpuSupport;

/** The GPU options of {@code dit} and {@code bench dit} where they can be checked without a GPU. */
class DitGpuOptionsTest {

    @TempDir
    Path tmp;

    @Test
    void tinyModelOnTheGpuIsAUsageErrorNamingTheHeadDim() {
        CliRun run = CliRun.of("dit", "--config", "tiny", "--latent", "2,4,6", "--steps", "1", "--device", "gpu",
                "--out", tmp.resolve("x.safetensors").toString());
        String line = run.assertOneLineError();
        assertTrue(line.contains("--device gpu: the GPU attention kernels take head dim 64 or 128, tiny has 32"), line);
    }

    @Test
    void autoKeepsTheTinyModelOnTheCpuAndSaysWhy() {
        CliRun run = CliRun.of("dit", "--config", "tiny", "--latent", "2,4,6", "--steps", "1", "--guidance", "1",
                "--out", tmp.resolve("x.safetensors").toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("device: CPU (the GPU attention kernels take head dim 64 or 128, tiny has 32)"),
                run.out());
    }

    @Test
    void benchDitWithoutAGpuSaysSo() {
        org.junit.jupiter.api.Assumptions.assumeTrue(GpuSupport.whyUnusable().isPresent(), "a GPU is present");
        CliRun run = CliRun.of("bench", "dit", "--iters", "1");
        String line = run.assertOneLineError();
        assertTrue(line.contains("bench dit needs a GPU: "), line);
    }

    @Test
    void benchDitRejectsAWindowLargerThanTheGrid() {
        CliRun run = CliRun.of("bench", "dit", "--latent", "6,16,16", "--window", "3,3,3");
        String line = run.assertOneLineError();
        assertTrue(line.contains("--window") || line.contains("needs a GPU"), line);
    }
}
