package tileattn.cuda;

import tileattn.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Owns device allocations, pinned host buffers, streams and events, like an {@link Arena} owns memory: closing
 * the scope waits for the device and frees everything it handed out, newest first, so an exception in the middle
 * of GPU work leaks nothing when the scope is a try-with-resources resource. Using anything of a closed scope
 * throws {@link IllegalStateException}. Scopes may nest (a short-lived scope for temporaries inside a long one).
 */
public final class DeviceScope implements AutoCloseable {

    // cuMemHostAlloc flag: pinned memory usable from every context, not only the one current at allocation.
    private static final int CU_MEMHOSTALLOC_PORTABLE = 1;
    private static final int CU_STREAM_NON_BLOCKING = 1;
    private static final int CU_EVENT_DEFAULT = 0;

    private final CudaContext context;
    private final CudaDriver driver;
    private final Deque<Runnable> releases = new ArrayDeque<>();
    private Arena hostArena;
    private boolean open = true;

    DeviceScope(CudaContext context) {
        this.context = context;
        this.driver = context.driver();
    }

    public CudaContext context() {
        return context;
    }

    public synchronized boolean isOpen() {
        return open;
    }

    synchronized void checkOpen() {
        if (!open) {
            throw new IllegalStateException("device scope already closed: its buffers, streams and events are freed");
        }
    }

    /**
     * Allocates device memory (contents undefined).
     *
     * @throws CudaOutOfMemoryException when the device has too little free memory; the scope stays usable
     */
    public synchronized DeviceBuffer allocate(long bytes) {
        checkOpen();
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation size must be positive, got " + bytes + " bytes");
        }
        context.makeCurrent();
        long[] ptr = new long[1];
        int rc = driver.memAlloc(bytes, ptr);
        if (rc == CudaDriver.CUDA_ERROR_OUT_OF_MEMORY) {
            long[] info = driver.memoryInfo();
            throw new CudaOutOfMemoryException("cuMemAlloc_v2", rc, driver.errorName(rc), driver.errorString(rc),
                    context.device().name(), bytes, info[0], info[1]);
        }
        driver.check("cuMemAlloc_v2(" + bytes + " bytes)", rc);
        long address = ptr[0];
        releases.push(() -> driver.memFree(address));
        return new DeviceBuffer(this, address, bytes);
    }

    /** Allocates a device tensor of the given element type and shape (contents undefined). */
    public DeviceTensor allocateTensor(DType dtype, int... shape) {
        long bytes = Math.multiplyExact(DeviceTensor.elementCount(shape), (long) dtype.bytes());
        return new DeviceTensor(allocate(Math.max(bytes, 1)).slice(0, bytes), shape, dtype);
    }

    /**
     * Allocates page-locked host memory, which asynchronous copies need to overlap with other work. The segment
     * becomes inaccessible when the scope closes.
     */
    public synchronized MemorySegment allocatePinned(long bytes) {
        checkOpen();
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation size must be positive, got " + bytes + " bytes");
        }
        context.makeCurrent();
        MemorySegment[] ptr = new MemorySegment[1];
        int rc = driver.memHostAlloc(bytes, CU_MEMHOSTALLOC_PORTABLE, ptr);
        driver.check("cuMemHostAlloc(" + bytes + " bytes)", rc);
        MemorySegment raw = ptr[0];
        releases.push(() -> driver.memFreeHost(raw));
        if (hostArena == null) {
            hostArena = Arena.ofShared();
        }
        return raw.reinterpret(bytes, hostArena, null);
    }

    /** A stream that does not synchronise with the legacy default stream. */
    public synchronized CudaStream createStream() {
        checkOpen();
        context.makeCurrent();
        MemorySegment handle = driver.streamCreate(CU_STREAM_NON_BLOCKING);
        releases.push(() -> driver.streamDestroy(handle));
        return new CudaStream(context, handle, true);
    }

    /** An event that records timestamps, for {@link CudaEvent#elapsedMillis}. */
    public synchronized CudaEvent createEvent() {
        checkOpen();
        context.makeCurrent();
        MemorySegment handle = driver.eventCreate(CU_EVENT_DEFAULT);
        releases.push(() -> driver.eventDestroy(handle));
        return new CudaEvent(context, handle, this);
    }

    /**
     * Waits for the device, then frees everything this scope handed out. Failures do not stop the release of the
     * rest; the first is thrown with the others suppressed.
     */
    @Override
    public synchronized void close() {
        if (!open) {
            return;
        }
        open = false;
        RuntimeException failure = null;
        if (!releases.isEmpty()) {
            try {
                context.makeCurrent();
                driver.contextSynchronize();
            } catch (RuntimeException e) {
                failure = e;
            }
        }
        if (hostArena != null) {
            // Pinned segments become inaccessible before their memory is freed.
            hostArena.close();
        }
        while (!releases.isEmpty()) {
            try {
                releases.pop().run();
            } catch (RuntimeException e) {
                failure = CudaContext.accumulate(failure, e);
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
