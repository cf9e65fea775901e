package tileattn.cuda;

import tileattn.tensor.DType;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class CudaRuntimeGpuTest {

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

    private static float[] randomFloats(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    @Test
    void deviceReportsPlausibleProperties() {
        CudaDevice device = context.device();
        assertFalse(device.name().isBlank());
        assertTrue(device.computeMajor() >= 3, device.computeCapability());
        assertTrue(device.multiprocessors() > 0);
        assertTrue(device.maxSharedMemoryPerBlockOptin() >= 48 * 1024);
        assertTrue(device.l2CacheBytes() > 0);
        MemoryInfo memory = context.memoryInfo();
        assertTrue(memory.totalBytes() > 0 && memory.freeBytes() <= memory.totalBytes());
        assertEquals(device.totalMemoryBytes(), memory.totalBytes());
        assertTrue(Cuda.status().driverVersion() >= 12000, "driver " + Cuda.status().driverVersion());
    }

    @Test
    void synchronousCopiesRoundTrip() {
        Random rnd = new Random(1);
        float[] data = randomFloats(rnd, 10_007);
        try (DeviceScope scope = context.openScope()) {
            DeviceBuffer a = scope.allocate(data.length * 4L);
            DeviceBuffer b = scope.allocate(data.length * 4L);
            a.copyFromHost(data);
            b.fill(0x7FC00001);
            b.copyFrom(a);
            float[] back = new float[data.length];
            b.copyToHost(back);
            assertArrayEquals(data, back);
        }
    }

    @Test
    void slicesAddressTheirOwnBytes() {
        try (DeviceScope scope = context.openScope()) {
            DeviceBuffer buffer = scope.allocate(64);
            buffer.fill((byte) 0x11);
            buffer.slice(8, 16).fill((byte) 0x22);
            buffer.slice(40, 8).fill(0xA1B2C3D4);
            byte[] host = new byte[64];
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment seg = arena.allocate(64);
                buffer.copyToHost(seg);
                host = seg.toArray(ValueLayout.JAVA_BYTE);
            }
            for (int i = 0; i < 64; i++) {
                byte expected = i >= 8 && i < 24 ? (byte) 0x22 : (byte) 0x11;
                if (i >= 40 && i < 48) {
                    expected = (byte) (0xA1B2C3D4 >>> (8 * ((i - 40) % 4)));
                }
                assertEquals(expected, host[i], "byte " + i);
            }
            assertThrows(IndexOutOfBoundsException.class, () -> buffer.slice(60, 8));
            assertTrue(buffer.slice(0, 16).overlaps(buffer.slice(8, 16)));
            assertFalse(buffer.slice(0, 8).overlaps(buffer.slice(8, 8)));
        }
    }

    @Test
    void asynchronousCopiesThroughPinnedMemoryOnAStream() {
        Random rnd = new Random(2);
        int n = 1 << 16;
        float[] data = randomFloats(rnd, n);
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            MemorySegment pinnedIn = scope.allocatePinned(n * 4L);
            MemorySegment pinnedOut = scope.allocatePinned(n * 4L);
            MemorySegment.copy(data, 0, pinnedIn, ValueLayout.JAVA_FLOAT, 0, n);
            pinnedOut.fill((byte) 0x7F);
            DeviceBuffer a = scope.allocate(n * 4L);
            DeviceBuffer b = scope.allocate(n * 4L);
            b.fillAsync((byte) 0, stream);
            a.copyFromHostAsync(pinnedIn, stream);
            b.copyFromAsync(a, stream);
            b.copyToHostAsync(pinnedOut, stream);
            stream.synchronize();
            assertArrayEquals(data, pinnedOut.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    @Test
    void eventsTimeWorkOnAStream() {
        try (DeviceScope scope = context.openScope()) {
            CudaStream stream = scope.createStream();
            CudaEvent start = scope.createEvent();
            CudaEvent end = scope.createEvent();
            DeviceBuffer a = scope.allocate(64L << 20);
            DeviceBuffer b = scope.allocate(64L << 20);
            a.fillAsync((byte) 3, stream);
            start.record(stream);
            for (int i = 0; i < 4; i++) {
                b.copyFromAsync(a, stream);
            }
            end.record(stream);
            float ms = CudaEvent.elapsedMillis(start, end);
            assertTrue(ms > 0 && ms < 60_000, "elapsed " + ms + " ms");
        }
    }

    @Test
    void streamsOrderedByEvents() {
        int n = 1 << 20;
        try (DeviceScope scope = context.openScope()) {
            CudaStream producer = scope.createStream();
            CudaStream consumer = scope.createStream();
            CudaEvent ready = scope.createEvent();
            DeviceBuffer a = scope.allocate(n * 4L);
            DeviceBuffer b = scope.allocate(n * 4L);
            b.fill(0);
            a.fillAsync(0x12345678, producer);
            ready.record(producer);
            consumer.waitFor(ready);
            b.copyFromAsync(a, consumer);
            consumer.synchronize();
            int[] back = new int[n];
            b.copyToHost(back);
            for (int i = 0; i < n; i += 997) {
                assertEquals(0x12345678, back[i]);
            }
        }
    }

    @Test
    void closedScopeRejectsUse() {
        DeviceBuffer buffer;
        MemorySegment pinned;
        try (DeviceScope scope = context.openScope()) {
            buffer = scope.allocate(1024);
            pinned = scope.allocatePinned(1024);
        }
        assertThrows(IllegalStateException.class, buffer::address);
        assertThrows(IllegalStateException.class, () -> buffer.fill((byte) 1));
        assertThrows(IllegalStateException.class, () -> pinned.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void heapSegmentsAndOversizedCopiesAreRejected() {
        try (DeviceScope scope = context.openScope()) {
            DeviceBuffer buffer = scope.allocate(16);
            assertThrows(IllegalArgumentException.class, () -> buffer.copyFromHost(MemorySegment.ofArray(new byte[16])));
            assertThrows(IllegalArgumentException.class, () -> buffer.copyFromHost(new float[5]));
            assertThrows(IllegalArgumentException.class, () -> scope.allocate(0));
        }
    }

    @Test
    void deviceTensorsUploadAndDownloadEveryType() {
        Random rnd = new Random(3);
        int[] shape = {2, 3, 37, 5};
        float[] data = randomFloats(rnd, 2 * 3 * 37 * 5);
        tileattn.tensor.FloatTensor host = new tileattn.tensor.FloatTensor(shape, data);
        try (DeviceScope scope = context.openScope()) {
            for (DType type : DType.values()) {
                DeviceTensor t = DeviceTensor.upload(scope, host, type);
                assertEquals(type, t.dtype());
                assertArrayEquals(shape, t.shape());
                assertEquals((long) data.length * type.bytes(), t.bytes());
                float[] back = t.download().data();
                for (int i = 0; i < data.length; i++) {
                    float expected = type == DType.F32 ? data[i] : type.decodeHalf(type.encodeHalf(data[i]));
                    assertEquals(expected, back[i], type + " element " + i);
                }
            }
        }
    }
}
