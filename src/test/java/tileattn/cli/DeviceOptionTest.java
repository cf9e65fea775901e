package tileattn.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import tileattn.kernels.GpuSupport;

class DeviceOptionTest {

    @Command(name = "compute")
    static final class ComputeCommand implements Callable<Integer> {
        @Mixin
        DeviceOption device;
        DeviceOption.Backend resolved;

        @Override
        public Integer call() {
            resolved = device.resolve();
            return 0;
        }
    }

    @Command(name = "cpu-only")
    static final class CpuOnlyCommand implements Callable<Integer> {
        @Mixin
        DeviceOption device;
        DeviceOption.Backend resolved;

        @Override
        public Integer call() {
            resolved = device.resolveCpuOnly("the GPU kernels take head dim 64 or 128, the input has d=80");
            return 0;
        }
    }

    private record Outcome(int code, DeviceOption.Backend backend, String err, String note) {
    }

    private static Outcome run(String... args) {
        ComputeCommand command = new ComputeCommand();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(command);
        cli.setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new Outcome(code, command.resolved, err.toString(), command.device.note());
    }

    private static Outcome runCpuOnly(String... args) {
        CpuOnlyCommand command = new CpuOnlyCommand();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(command);
        cli.setErr(new PrintWriter(err));
        int code = cli.execute(args);
        return new Outcome(code, command.resolved, err.toString(), command.device.note());
    }

    @Test
    void workWithoutAGpuPathRunsOnTheCpuUnderAutoAndSaysWhy() {
        Outcome auto = runCpuOnly();
        assertEquals(0, auto.code());
        assertEquals(DeviceOption.Backend.CPU, auto.backend());
        assertEquals("CPU (the GPU kernels take head dim 64 or 128, the input has d=80)", auto.note());
        Outcome cpu = runCpuOnly("--device", "cpu");
        assertEquals(DeviceOption.Backend.CPU, cpu.backend());
        assertEquals("CPU (as asked with --device cpu)", cpu.note());
    }

    @Test
    void workWithoutAGpuPathIsAUsageErrorUnderDeviceGpu() {
        Outcome o = runCpuOnly("--device", "gpu");
        assertEquals(CommandLine.ExitCode.USAGE, o.code());
        assertNull(o.backend());
        assertTrue(o.err().contains("--device gpu: the GPU kernels take head dim 64 or 128, the input has d=80; use --device cpu or auto"), o.err());
    }

    @Test
    void cpuIsAlwaysCpu() {
        Outcome o = run("--device", "cpu");
        assertEquals(0, o.code());
        assertEquals(DeviceOption.Backend.CPU, o.backend());
    }

    @Test
    void autoFollowsGpuAvailability() {
        Outcome o = run();
        assertEquals(0, o.code());
        boolean usable = GpuSupport.whyUnusable().isEmpty();
        assertEquals(usable ? DeviceOption.Backend.GPU : DeviceOption.Backend.CPU, o.backend());
        if (!usable) {
            assertTrue(o.note().contains(GpuSupport.whyUnusable().orElseThrow()), o.note());
        }
    }

    @Test
    void gpuWithoutAUsableGpuIsAUsageErrorNamingTheReason() {
        Outcome o = run("--device", "gpu");
        GpuSupport.whyUnusable().ifPresentOrElse(why -> {
            assertEquals(CommandLine.ExitCode.USAGE, o.code());
            assertTrue(o.err().contains("--device gpu: no usable GPU: " + why), o.err());
        }, () -> assertEquals(DeviceOption.Backend.GPU, o.backend()));
    }

    @Test
    void unknownDeviceIsRejected() {
        Outcome o = run("--device", "tpu");
        assertEquals(CommandLine.ExitCode.USAGE, o.code());
        assertTrue(o.err().contains("tpu"), o.err());
    }
}
