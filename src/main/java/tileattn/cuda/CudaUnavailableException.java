package tileattn.cuda;

/** GPU work was asked for where CUDA cannot run; the message says why (see {@link CudaStatus#reason()}). */
public final class CudaUnavailableException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public CudaUnavailableException(String message) {
        super(message);
    }
}
