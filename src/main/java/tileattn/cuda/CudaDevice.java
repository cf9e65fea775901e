package tileattn.cuda;

/**
 * One CUDA device and the properties tileattn sizes its kernels by, read once with cuDeviceGetAttribute.
 *
 * @param ordinal                      CUDA device ordinal
 * @param handle                       the CUdevice
 * @param name                         e.g. "NVIDIA H100 80GB HBM3"
 * @param computeMajor                 compute capability, major (9 for Hopper)
 * @param computeMinor                 compute capability, minor
 * @param multiprocessors              SM count
 * @param maxSharedMemoryPerBlockOptin the most shared memory one block may use after raising its limit
 * @param l2CacheBytes                 L2 cache size
 * @param totalMemoryBytes             device memory
 * @param clusterLaunch                whether thread-block clusters can be launched
 */
public record CudaDevice(int ordinal, int handle, String name, int computeMajor, int computeMinor,
                         int multiprocessors, int maxSharedMemoryPerBlockOptin, int l2CacheBytes,
                         long totalMemoryBytes, boolean clusterLaunch) {

    // CUdevice_attribute values, checked against cuda.h 13.0.
    static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    static final int ATTR_L2_CACHE_SIZE = 38;
    static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;
    static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    static final int ATTR_CLUSTER_LAUNCH = 120;

    static CudaDevice query(CudaDriver driver, int ordinal) {
        int dev = driver.device(ordinal);
        return new CudaDevice(ordinal, dev, driver.deviceName(dev),
                driver.deviceAttribute(dev, ATTR_COMPUTE_CAPABILITY_MAJOR),
                driver.deviceAttribute(dev, ATTR_COMPUTE_CAPABILITY_MINOR),
                driver.deviceAttribute(dev, ATTR_MULTIPROCESSOR_COUNT),
                driver.deviceAttribute(dev, ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
                driver.deviceAttribute(dev, ATTR_L2_CACHE_SIZE),
                driver.deviceTotalMemory(dev),
                driver.deviceAttribute(dev, ATTR_CLUSTER_LAUNCH) != 0);
    }

    /** Any other CUdevice_attribute (see cuda.h), e.g. 82 for registers per multiprocessor. */
    public int attribute(int cuDeviceAttribute) {
        return Cuda.driver().deviceAttribute(handle, cuDeviceAttribute);
    }

    /** "9.0". */
    public String computeCapability() {
        return computeMajor + "." + computeMinor;
    }

    /** Compute capability as one number, 90 for 9.0, for comparisons. */
    public int computeCapabilityNumber() {
        return computeMajor * 10 + computeMinor;
    }
}
