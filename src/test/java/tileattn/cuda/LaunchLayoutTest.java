package tileattn.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Hand-written struct layouts against the numbers gcc gives for cuda.h 13.0 (sizeof / offsetof). */
class LaunchLayoutTest {

    @Test
    void launchConfigMatchesCudaH() {
        assertEquals(56, CudaFunction.LAUNCH_CONFIG.byteSize());
        assertEquals(0, CudaFunction.offset(CudaFunction.LAUNCH_CONFIG, "gridDimX"));
        assertEquals(12, CudaFunction.offset(CudaFunction.LAUNCH_CONFIG, "blockDimX"));
        assertEquals(24, CudaFunction.offset(CudaFunction.LAUNCH_CONFIG, "sharedMemBytes"));
        assertEquals(32, CudaFunction.offset(CudaFunction.LAUNCH_CONFIG, "hStream"));
        assertEquals(40, CudaFunction.offset(CudaFunction.LAUNCH_CONFIG, "attrs"));
        assertEquals(48, CudaFunction.offset(CudaFunction.LAUNCH_CONFIG, "numAttrs"));
        assertEquals(8, CudaFunction.LAUNCH_CONFIG.byteAlignment());
    }

    @Test
    void launchAttributeMatchesCudaH() {
        assertEquals(72, CudaFunction.LAUNCH_ATTRIBUTE.byteSize());
        assertEquals(0, CudaFunction.offset(CudaFunction.LAUNCH_ATTRIBUTE, "id"));
        assertEquals(8, CudaFunction.offset(CudaFunction.LAUNCH_ATTRIBUTE, "value"));
        assertEquals(8, CudaFunction.LAUNCH_ATTRIBUTE.byteAlignment());
    }
}
