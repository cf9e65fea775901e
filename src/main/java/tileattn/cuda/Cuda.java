package tileattn.cuda;

/**
 * Entry point to the CUDA driver. {@link #status()} probes once (load libcuda.so.1, cuInit, count devices) and
 * never throws, so callers can choose the CPU path; everything else throws {@link CudaUnavailableException}
 * with the status' reason when CUDA cannot be used.
 */
public final class Cuda {

    private static CudaStatus status;
    private static CudaDriver driver;

    private Cuda() {
    }

    public static synchronized CudaStatus status() {
        if (status == null) {
            status = probe();
        }
        return status;
    }

    public static boolean available() {
        return status().available();
    }

    public static int deviceCount() {
        driver();
        return status.deviceCount();
    }

    /** The device of a CUDA ordinal (0 .. deviceCount-1), with its properties read once. */
    public static CudaDevice device(int ordinal) {
        CudaDriver d = driver();
        if (ordinal < 0 || ordinal >= status.deviceCount()) {
            throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist; this process sees "
                    + status.deviceCount() + " device(s)");
        }
        return CudaDevice.query(d, ordinal);
    }

    static synchronized CudaDriver driver() {
        CudaStatus s = status();
        if (!s.available()) {
            throw new CudaUnavailableException("CUDA is not available: " + s.reason());
        }
        return driver;
    }

    private static CudaStatus probe() {
        String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT);
        if (!os.contains("linux")) {
            return CudaStatus.unavailable("the GPU path supports Linux only (this is " + System.getProperty("os.name") + ")", 0);
        }
        CudaDriver candidate;
        try {
            candidate = CudaDriver.load();
        } catch (IllegalArgumentException e) {
            return CudaStatus.unavailable("no CUDA driver found (" + CudaDriver.LIBRARY + " could not be loaded)", 0);
        } catch (java.util.NoSuchElementException e) {
            return CudaStatus.unavailable("the CUDA driver is too old (" + e.getMessage() + ")", 0);
        } catch (IllegalCallerException e) {
            return CudaStatus.unavailable("native access is disabled for tileattn (" + e.getMessage()
                    + "); run with --enable-native-access=ALL-UNNAMED", 0);
        }
        int version;
        try {
            version = candidate.driverVersion();
        } catch (CudaException e) {
            return CudaStatus.unavailable("the CUDA driver does not answer: " + e.getMessage(), 0);
        }
        int init = candidate.init();
        if (init == CudaDriver.CUDA_ERROR_NO_DEVICE) {
            return CudaStatus.unavailable("CUDA driver " + version / 1000 + "." + version % 1000 / 10
                    + " found but no CUDA-capable device is visible (cuInit: CUDA_ERROR_NO_DEVICE)", version);
        }
        if (init != CudaDriver.CUDA_SUCCESS) {
            return CudaStatus.unavailable("cuInit failed: " + candidate.errorName(init) + " (" + init + "): "
                    + candidate.errorString(init), version);
        }
        int count;
        try {
            count = candidate.deviceCount();
        } catch (CudaException e) {
            return CudaStatus.unavailable(e.getMessage(), version);
        }
        if (count == 0) {
            return CudaStatus.unavailable("the CUDA driver sees no device", version);
        }
        driver = candidate;
        return new CudaStatus(true, "", version, count);
    }
}
