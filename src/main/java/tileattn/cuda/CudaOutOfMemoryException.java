package tileattn.cuda;

/** A device allocation failed for lack of memory; the message names the request and what the device had free. */
public final class CudaOutOfMemoryException extends CudaException {

    private static final long serialVersionUID = 1L;

    private final long requestedBytes;
    private final long freeBytes;
    private final long totalBytes;

    CudaOutOfMemoryException(String call, int code, String errorName, String errorString, String deviceName,
                             long requestedBytes, long freeBytes, long totalBytes) {
        super(call, code, errorName, errorString, "cannot allocate " + ByteSizes.format(requestedBytes) + " ("
                + requestedBytes + " bytes) on " + deviceName + ": " + ByteSizes.format(freeBytes) + " free of "
                + ByteSizes.format(totalBytes) + " (" + call + ": " + errorName + ")");
        this.requestedBytes = requestedBytes;
        this.freeBytes = freeBytes;
        this.totalBytes = totalBytes;
    }

    public long requestedBytes() {
        return requestedBytes;
    }

    /** Free device memory right after the failed allocation, as cuMemGetInfo reported it. */
    public long freeBytes() {
        return freeBytes;
    }

    public long totalBytes() {
        return totalBytes;
    }
}
