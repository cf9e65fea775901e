package tileattn.cuda;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class CudaStatusTest {

    @Test
    void statusNeverThrowsAndExplainsUnavailability() {
        CudaStatus status = Cuda.status();
        assertSame(status, Cuda.status(), "probed once");
        assertEquals(status.available(), Cuda.available());
        if (status.available()) {
            assertTrue(status.deviceCount() > 0);
            assertTrue(status.driverVersion() > 0);
            assertEquals("", status.reason());
        } else {
            assertFalse(status.reason().isBlank());
            CudaUnavailableException e = assertThrows(CudaUnavailableException.class, () -> Cuda.device(0));
            assertTrue(e.getMessage().contains(status.reason()), e.getMessage());
        }
    }

    @Test
    void driverVersionReadsAsMajorMinor() {
        assertEquals("13.0", new CudaStatus(true, "", 13000, 1).driverVersionString());
        assertEquals("12.8", new CudaStatus(true, "", 12080, 1).driverVersionString());
    }
}
