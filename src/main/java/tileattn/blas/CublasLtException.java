package tileattn.blas;

/** A cuBLASLt call returned a status other than CUBLAS_STATUS_SUCCESS. */
public final class CublasLtException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String call;
    private final int status;

    public CublasLtException(String call, int status, String statusName) {
        super(call + " failed: " + statusName + " (" + status + ")");
        this.call = call;
        this.status = status;
    }

    /** The cuBLASLt function that failed, with what it was asked where that helps. */
    public String call() {
        return call;
    }

    /** The cublasStatus_t value. */
    public int status() {
        return status;
    }
}
