package tileattn.cuda;

/** GPU work was asked for where CUDA cannot run; the message says why (see {@link CudaStatus#reason()}). */
public final class CudaUnavailableException extends RuntimeException {

    public CudaUnavailableException(String message) {
        super(message);
    }
}
