package tileattn.kernels;

/**
 * A kernel family cannot run here: its fatbin is not in the jar (built without nvcc) or the driver cannot load
 * it for this device. The GPU path is then unavailable and callers fall back to the CPU.
 */
public final class KernelUnavailableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public KernelUnavailableException(String message) {
        super(message);
    }

    public KernelUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
