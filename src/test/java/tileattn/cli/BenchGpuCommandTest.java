package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import tileattn.kernels.GpuSupport;
import tileattn.kernels.KvRangePlan;
import tileattn.mask.Window;

/** The parts of {@code bench gpu} that need no GPU: the cases, their FLOP counts, option handling. */
class BenchGpuCommandTest {

    @Test
    void listShowsEveryCaseOfTheIssue() {
        CliRun run = CliRun.of("bench", "gpu", "--list");
        assertEquals(0, run.exitCode(), run.err());
        for (GpuBenchCase c : GpuBenchCase.ALL) {
            assertTrue(run.out().contains(c.id()), c.id() + " in\n" + run.out());
        }
        assertTrue(run.out().contains("HunyuanVideo 30x48x80, 24 heads, STA 3x3x3"), run.out());
        assertTrue(run.out().contains("STA 4x4x7 (= grid)"), run.out());
        CliRun two = CliRun.of("bench", "gpu", "--list", "--case", "wan-dense,hunyuan-sta-3x3x3-text256");
        assertEquals(0, two.exitCode(), two.err());
        assertEquals(4, two.out().lines().count(), two.out());
    }

    @Test
    void flopsCountTheMaskNotTheKernelsPlan() {
        GpuBenchCase hunyuan = GpuBenchCase.byId("hunyuan-sta-3x3x3");
        // the documented figure: 1.468e13 FLOPs, 91.0% sparse
        assertEquals(1.468e13, hunyuan.flops(), 0.001e13);
        assertEquals(0.910, hunyuan.sparsity(), 0.0005);
        for (GpuBenchCase c : GpuBenchCase.ALL) {
            KvRangePlan plan = c.dense() ? KvRangePlan.dense(c.sequenceLength(), c.heads())
                    : KvRangePlan.sta(c.layout(), repeat(c.window(), c.heads()));
            assertEquals(plan.attendedPairs(), c.heads() * c.attendedPairsPerHead(), 1e-6 * plan.attendedPairs(), c.id());
        }
        GpuBenchCase full = GpuBenchCase.byId("hunyuan-sta-full"), dense = GpuBenchCase.byId("hunyuan-dense");
        assertEquals(dense.flops(), full.flops(), "a window covering the grid is dense attention");
        GpuBenchCase text = GpuBenchCase.byId("hunyuan-sta-3x3x3-text256");
        long s = text.sequenceLength();
        assertEquals(115_456, s);
        assertTrue(text.attendedPairsPerHead() > hunyuan.attendedPairsPerHead() + 256.0 * s,
                "text rows attend all S tokens and video rows the text too");
    }

    private static Window[] repeat(Window w, int n) {
        Window[] all = new Window[n];
        Arrays.fill(all, w);
        return all;
    }

    @Test
    void badOptionsAreOneLineErrors() {
        String unknown = CliRun.of("bench", "gpu", "--case", "nope").assertOneLineError();
        assertTrue(unknown.contains("unknown benchmark case 'nope'") && unknown.contains("hunyuan-sta-3x3x3"), unknown);
        assertTrue(CliRun.of("bench", "gpu", "--repeat", "0").assertOneLineError().contains("--repeat"));
        assertTrue(CliRun.of("bench", "gpu", "--kernel", "tpu").assertOneLineError().contains("tpu"));
    }

    @Test
    void withoutAUsableGpuTheReasonIsGiven() {
        String why = GpuSupport.whyUnusable().orElse(null);
        org.junit.jupiter.api.Assumptions.assumeTrue(why != null, "a usable GPU is present");
        String line = CliRun.of("bench", "gpu", "--case", "wan-dense").assertOneLineError();
        assertTrue(line.contains("bench gpu: no usable GPU: " + why), line);
    }
}
