package tileattn.blas;

/** cuBLASLt cannot be used in this process: the library was not found, or it lacks a function tileattn binds. */
public final class CublasLtUnavailableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public CublasLtUnavailableException(String message) {
        super(message);
    }

    public CublasLtUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
