package tileattn.cuda;

/**
 * Whether CUDA can be used in this process, and if not, why: no driver library, a driver too old, cuInit failing
 * (for instance CUDA_ERROR_NO_DEVICE), or zero devices. Obtained from {@link Cuda#status()} without exceptions.
 *
 * @param available     the driver loaded, initialised, and sees at least one device
 * @param reason        why CUDA is not available; empty when it is
 * @param driverVersion cuDriverGetVersion (e.g. 13000 for CUDA 13.0), 0 when the driver did not load
 * @param deviceCount   CUDA devices visible to this process
 */
public record CudaStatus(boolean available, String reason, int driverVersion, int deviceCount) {

    static CudaStatus unavailable(String reason, int driverVersion) {
        return new CudaStatus(false, reason, driverVersion, 0);
    }

    /** "13.0" for 13000. */
    public String driverVersionString() {
        return driverVersion / 1000 + "." + driverVersion % 1000 / 10;
    }
}
