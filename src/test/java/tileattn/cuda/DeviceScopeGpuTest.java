package tileattn.cuda;

import tileattn.tensor.DType;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class DeviceScopeGpuTest {

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

    /** Work that fails after it allocated, as a kernel wrapper rejecting its arguments would. */
    private static void allocateThenFail(int cycle) {
        try (DeviceScope scope = context.openScope()) {
            scope.allocate(1 << 20);
            scope.allocateTensor(DType.BF16, 2, 3, 129, 64);
            scope.createStream();
            scope.createEvent();
            if (cycle % 100 == 0) {
                scope.allocatePinned(4096);
            }
            throw new IllegalArgumentException("failure in cycle " + cycle);
        }
    }

    @Test
    void freeMemoryReturnsToItsStartAfterTenThousandCycles() {
        // one warm-up cycle: the driver sets up its own allocation pools on first use
        assertThrows(IllegalArgumentException.class, () -> allocateThenFail(0));
        long before = context.memoryInfo().freeBytes();
        for (int cycle = 1; cycle <= 10_000; cycle++) {
            int c = cycle;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> allocateThenFail(c));
            assertEquals("failure in cycle " + c, e.getMessage());
        }
        long after = context.memoryInfo().freeBytes();
        assertEquals(before, after, "free device memory before and after 10,000 allocate/fail/free cycles");
    }

    @Test
    void nestedScopesFreeOnlyTheirOwn() {
        try (DeviceScope outer = context.openScope()) {
            DeviceBuffer kept = outer.allocate(4096);
            kept.fill(7);
            long before = context.memoryInfo().freeBytes();
            try (DeviceScope inner = context.openScope()) {
                inner.allocate(64L << 20);
                assertTrue(context.memoryInfo().freeBytes() < before);
            }
            assertEquals(before, context.memoryInfo().freeBytes());
            int[] back = new int[1024];
            kept.copyToHost(back);
            assertEquals(7, back[1023]);
        }
    }

    @Test
    @Tag("cuda-error")
    void outOfMemoryNamesTheRequestAndTheProcessKeepsWorking() {
        long free = context.memoryInfo().freeBytes();
        long request = free + (8L << 30);
        try (DeviceScope scope = context.openScope()) {
            DeviceBuffer small = scope.allocate(1 << 20);
            CudaOutOfMemoryException e = assertThrows(CudaOutOfMemoryException.class, () -> scope.allocate(request));
            assertEquals(request, e.requestedBytes());
            assertTrue(e.getMessage().contains(Long.toString(request)), e.getMessage());
            assertTrue(e.getMessage().contains("free of"), e.getMessage());
            assertTrue(e.freeBytes() > 0 && e.freeBytes() <= e.totalBytes());
            assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
            // the scope and the context stay usable
            DeviceBuffer after = scope.allocate(1 << 20);
            after.copyFrom(small);
        }
        assertEquals(free, context.memoryInfo().freeBytes());
    }
}
