package tileattn.cuda;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Shared set-up of the tests tagged "gpu": they run where {@code -Dgroups=gpu} (or the device script) asks for
 * them. Where no usable CUDA device exists they are skipped, unless TILEATTN_REQUIRE_GPU=1 (set by
 * scripts/device-test.sh) turns that into a failure, so a GPU run cannot pass by skipping everything.
 */
public final class GpuTests {

    private GpuTests() {
    }

    public static CudaContext openContext() {
        CudaStatus status = Cuda.status();
        if (!status.available()) {
            if ("1".equals(System.getenv("TILEATTN_REQUIRE_GPU"))) {
                fail("TILEATTN_REQUIRE_GPU=1 but CUDA is unavailable: " + status.reason());
            }
            assumeTrue(false, "no CUDA device: " + status.reason());
        }
        return CudaContext.primary(0);
    }
}
