package tileattn.cuda;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Driver errors come back as exceptions that name the call and the driver's error; the context survives them. */
@Tag("gpu")
@Tag("cuda-error")
class CudaErrorGpuTest {

    private static CudaContext context;

    @BeforeAll
    static void open() {
        context = GpuTests.openContext();
    }

    @AfterAll
    static void close() {
        if (context != null) {
            context.close();
        }
    }

    @Test
    void aCorruptImageFailsToLoadWithTheDriversWords() {
        byte[] garbage = new byte[4096];
        new java.util.Random(5).nextBytes(garbage);
        CudaException e = assertThrows(CudaException.class, () -> CudaModule.load(context, garbage, "garbage.fatbin"));
        assertTrue(e.call().startsWith("cuModuleLoadData"), e.call());
        assertTrue(e.call().contains("garbage.fatbin"), e.call());
        assertTrue(e.errorName().startsWith("CUDA_ERROR_"), e.errorName());
        assertFalse(e.errorString().isBlank());
        assertNotEquals(0, e.code());
        assertTrue(e.getMessage().contains(e.errorName()) && e.getMessage().contains(e.errorString()), e.getMessage());
        try (DeviceScope scope = context.openScope()) {
            scope.allocate(1024).fill((byte) 1);
        }
    }
}
