package tileattn.cli;

import java.util.Optional;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import tileattn.kernels.GpuSupport;

/**
 * {@code --device cpu|gpu|auto} for compute commands; add it with {@code @Mixin DeviceOption device;} and call
 * {@link #resolve()}. {@code auto} takes the GPU when one is usable and says why not otherwise; {@code gpu}
 * without a usable GPU is a usage error that names the reason.
 */
public final class DeviceOption {

    public enum Choice { cpu, gpu, auto }

    public enum Backend { CPU, GPU }

    @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|gpu|auto",
            description = "Where to compute: cpu, gpu, or auto (the GPU when a usable CUDA device is found). Default: ${DEFAULT-VALUE}.")
    Choice choice = Choice.auto;

    @Spec(Spec.Target.MIXEE)
    CommandSpec mixee;

    private String note = "";

    public Choice choice() {
        return choice;
    }

    /** The backend to use. */
    public Backend resolve() {
        if (choice == Choice.cpu) {
            note = "CPU (as asked with --device cpu)";
            return Backend.CPU;
        }
        Optional<String> why = GpuSupport.whyUnusable();
        if (why.isEmpty()) {
            note = "GPU";
            return Backend.GPU;
        }
        if (choice == Choice.gpu) {
            String message = "--device gpu: no usable GPU: " + why.get();
            if (mixee != null) {
                throw new ParameterException(mixee.commandLine(), message);
            }
            throw new IllegalStateException(message);
        }
        note = "CPU (no usable GPU: " + why.get() + ")";
        return Backend.CPU;
    }

    /**
     * The backend for work that has no GPU path ({@code reason} says so, e.g. "the GPU kernels take head dim 64 or
     * 128, the input has d=80"):
     * {@code auto} and {@code cpu} give the CPU and note why; {@code gpu} is a usage error naming the reason.
     */
    public Backend resolveCpuOnly(String reason) {
        if (choice == Choice.gpu) {
            String message = "--device gpu: " + reason + "; use --device cpu or auto";
            if (mixee != null) {
                throw new ParameterException(mixee.commandLine(), message);
            }
            throw new IllegalStateException(message);
        }
        note = choice == Choice.cpu ? "CPU (as asked with --device cpu)" : "CPU (" + reason + ")";
        return Backend.CPU;
    }

    /** After {@link #resolve()}: a short sentence for logs saying what was chosen and why. */
    public String note() {
        return note;
    }
}
