package tileattn.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import tileattn.cuda.ByteSizes;
import tileattn.cuda.Cuda;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaDevice;
import tileattn.cuda.CudaStatus;
import tileattn.cuda.MemoryInfo;
import tileattn.kernels.GpuSupport;
import tileattn.kernels.KernelLibrary;

/** {@code tileattn info}: the CUDA driver and devices, the kernels in this jar and whether they load. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the CUDA driver, GPUs and built-in kernels, or why the CPU path will be used.")
public final class InfoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("tileattn " + spec.root().version()[0].replace("tileattn ", "") + " on Java "
                + Runtime.version() + " (" + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ")");
        List<String> families = KernelLibrary.familiesInJar();
        out.println("CUDA kernels in this jar: " + (families.isEmpty() ? "none (built without nvcc)" : String.join(", ", families)));
        CudaStatus status = Cuda.status();
        if (!status.available()) {
            out.println("No usable GPU: " + status.reason() + ". The CPU path will be used.");
            out.flush();
            return 0;
        }
        out.println("CUDA driver: " + status.driverVersionString() + " (" + status.driverVersion() + "), "
                + status.deviceCount() + " device(s)");
        for (int ordinal = 0; ordinal < status.deviceCount(); ordinal++) {
            describe(out, Cuda.device(ordinal), families);
        }
        String why = GpuSupport.whyUnusable().orElse(null);
        out.println(why == null ? "GPU path: available on device 0 (--device auto picks it)."
                : "GPU path unavailable: " + why + ". The CPU path will be used.");
        out.flush();
        return 0;
    }

    private static void describe(PrintWriter out, CudaDevice device, List<String> families) {
        out.println("Device " + device.ordinal() + ": " + device.name());
        out.println("  compute capability " + device.computeCapability() + ", " + device.multiprocessors()
                + " SMs, L2 " + ByteSizes.format(device.l2CacheBytes()) + ", shared memory per block up to "
                + ByteSizes.format(device.maxSharedMemoryPerBlockOptin()) + " (opt-in)"
                + (device.clusterLaunch() ? ", cluster launch" : ""));
        try (CudaContext context = CudaContext.primary(device)) {
            MemoryInfo memory = context.memoryInfo();
            out.println("  memory " + ByteSizes.format(memory.totalBytes()) + ", " + ByteSizes.format(memory.freeBytes()) + " free");
            KernelLibrary library = KernelLibrary.of(context);
            for (String family : families) {
                String result;
                try {
                    library.module(family);
                    result = "loads";
                } catch (RuntimeException e) {
                    result = "does not load: " + e.getMessage();
                }
                out.println("  kernels " + family + ": " + result);
            }
        } catch (RuntimeException e) {
            out.println("  cannot open a context: " + e.getMessage());
        }
    }
}
