package tileattn.kernels;

import java.util.Optional;
import tileattn.cuda.Cuda;
import tileattn.cuda.CudaDevice;
import tileattn.cuda.CudaStatus;

/** Whether the GPU path can run in this process: a CUDA device of compute capability 8.0+ and kernels in the jar. */
public final class GpuSupport {

    /** The oldest architecture the jar's fatbins carry code for (sm_80 machine code and compute_80 PTX). */
    public static final int MIN_COMPUTE_CAPABILITY = 80;

    private GpuSupport() {
    }

    /** Empty when device 0 can run tileattn's kernels; otherwise a sentence saying why not. */
    public static Optional<String> whyUnusable() {
        CudaStatus status = Cuda.status();
        if (!status.available()) {
            return Optional.of(status.reason());
        }
        CudaDevice device = Cuda.device(0);
        if (device.computeCapabilityNumber() < MIN_COMPUTE_CAPABILITY) {
            return Optional.of(device.name() + " has compute capability " + device.computeCapability()
                    + "; tileattn's kernels need 8.0 or newer");
        }
        if (KernelLibrary.familiesInJar().isEmpty()) {
            return Optional.of("this jar carries no CUDA kernels (it was built without nvcc)");
        }
        return Optional.empty();
    }
}
