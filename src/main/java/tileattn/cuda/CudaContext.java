package tileattn.cuda;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A retained reference to a device's primary context (the one the CUDA runtime and PyTorch share). Every
 * operation through tileattn makes it current on the calling thread first, so any Java thread may use it.
 * Closing releases the reference (the driver destroys the context when the last one goes), after closing what
 * was attached to it, such as loaded kernel modules. Device memory belongs to {@link DeviceScope}s opened here.
 */
public final class CudaContext implements AutoCloseable {

    private final CudaDriver driver;
    private final CudaDevice device;
    private final MemorySegment handle;
    private final Map<Class<?>, AutoCloseable> attachments = new LinkedHashMap<>();
    private final CudaStream defaultStream;
    private volatile boolean open = true;

    private CudaContext(CudaDriver driver, CudaDevice device, MemorySegment handle) {
        this.driver = driver;
        this.device = device;
        this.handle = handle;
        this.defaultStream = new CudaStream(this, MemorySegment.NULL, false);
    }

    /** Retains the primary context of a device and makes it current on this thread. */
    public static CudaContext primary(CudaDevice device) {
        CudaDriver driver = Cuda.driver();
        MemorySegment ctx = driver.primaryContextRetain(device.handle());
        CudaContext context = new CudaContext(driver, device, ctx);
        try {
            driver.setCurrentContext(ctx);
        } catch (RuntimeException e) {
            driver.primaryContextRelease(device.handle());
            throw e;
        }
        return context;
    }

    /** The primary context of the device with this ordinal. */
    public static CudaContext primary(int ordinal) {
        return primary(Cuda.device(ordinal));
    }

    public CudaDevice device() {
        return device;
    }

    /** Whether two objects refer to the same driver context (two retains of one primary context do). */
    public boolean sameContextAs(CudaContext other) {
        return handle.address() == other.handle.address();
    }

    public boolean isOpen() {
        return open;
    }

    /** Makes this context current on the calling thread unless it already is. */
    public void makeCurrent() {
        checkOpen();
        if (driver.currentContext().address() != handle.address()) {
            driver.setCurrentContext(handle);
        }
    }

    CudaDriver driver() {
        return driver;
    }

    void checkOpen() {
        if (!open) {
            throw new IllegalStateException("the CUDA context of " + device.name() + " was closed");
        }
    }

    /** cuMemGetInfo for this device. */
    public MemoryInfo memoryInfo() {
        makeCurrent();
        long[] info = driver.memoryInfo();
        return new MemoryInfo(info[0], info[1]);
    }

    /** Waits for all work queued on this device by this process. */
    public void synchronize() {
        makeCurrent();
        driver.contextSynchronize();
    }

    /** Opens an owner for device memory, pinned host memory, streams and events; close it to free them all. */
    public DeviceScope openScope() {
        checkOpen();
        return new DeviceScope(this);
    }

    /** The legacy default stream (handle 0), which synchronises with the other blocking streams. */
    public CudaStream defaultStream() {
        return defaultStream;
    }

    /**
     * The object of this kind attached to the context, made by {@code factory} on first use and closed when the
     * context closes (in reverse order of attachment). Kernel libraries keep their loaded modules this way.
     */
    public synchronized <T extends AutoCloseable> T attachment(Class<T> kind, Supplier<? extends T> factory) {
        checkOpen();
        AutoCloseable existing = attachments.get(kind);
        if (existing != null) {
            return kind.cast(existing);
        }
        T made = factory.get();
        attachments.put(kind, made);
        return made;
    }

    @Override
    public synchronized void close() {
        if (!open) {
            return;
        }
        RuntimeException failure = null;
        List<AutoCloseable> toClose = new ArrayList<>(attachments.values());
        attachments.clear();
        for (int i = toClose.size() - 1; i >= 0; i--) {
            try {
                toClose.get(i).close();
            } catch (Exception e) {
                failure = accumulate(failure, e);
            }
        }
        open = false;
        try {
            driver.primaryContextRelease(device.handle());
        } catch (RuntimeException e) {
            failure = accumulate(failure, e);
        }
        if (failure != null) {
            throw failure;
        }
    }

    static RuntimeException accumulate(RuntimeException first, Exception next) {
        if (first == null) {
            return next instanceof RuntimeException r ? r : new IllegalStateException(next.getMessage(), next);
        }
        first.addSuppressed(next);
        return first;
    }

    @Override
    public String toString() {
        return "CUDA primary context of device " + device.ordinal() + " (" + device.name() + ")";
    }
}
