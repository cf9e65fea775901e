package tileattn.cuda;

/**
 * A CUDA driver call returned an error. Carries the call (with the kernel or entry-point name where there is
 * one), the CUresult code and the driver's own name and description of it.
 */
public class CudaException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String call;
    private final int code;
    private final String errorName;
    private final String errorString;

    public CudaException(String call, int code, String errorName, String errorString) {
        this(call, code, errorName, errorString, call + " failed: " + errorName + " (" + code + "): " + errorString);
    }

    protected CudaException(String call, int code, String errorName, String errorString, String message) {
        super(message);
        this.call = call;
        this.code = code;
        this.errorName = errorName;
        this.errorString = errorString;
    }

    /** The driver function that failed, e.g. {@code cuMemAlloc_v2} or {@code cuLaunchKernel(tileattn_convert_f32_to_bf16)}. */
    public String call() {
        return call;
    }

    /** The CUresult value. */
    public int code() {
        return code;
    }

    /** cuGetErrorName, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public String errorName() {
        return errorName;
    }

    /** cuGetErrorString, e.g. {@code out of memory}. */
    public String errorString() {
        return errorString;
    }
}
