package tileattn.cuda;

/** cuMemGetInfo: free and total device memory in bytes. */
public record MemoryInfo(long freeBytes, long totalBytes) {

    @Override
    public String toString() {
        return ByteSizes.format(freeBytes) + " free of " + ByteSizes.format(totalBytes);
    }
}
