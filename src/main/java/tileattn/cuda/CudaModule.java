package tileattn.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/**
 * A loaded CUDA module (a fatbin, cubin or PTX image) and its functions. Unloading invalidates its functions.
 * Kernel code normally comes through {@code tileattn.kernels.KernelLibrary}, which owns its modules.
 */
public final class CudaModule implements AutoCloseable {

    private final CudaContext context;
    private final MemorySegment handle;
    private final String name;
    private final Map<String, CudaFunction> functions = new HashMap<>();
    private boolean loaded = true;

    private CudaModule(CudaContext context, MemorySegment handle, String name) {
        this.context = context;
        this.handle = handle;
        this.name = name;
    }

    /**
     * Loads an image with cuModuleLoadData; the driver picks the machine code for this device or compiles the
     * PTX. {@code name} only labels errors.
     */
    public static CudaModule load(CudaContext context, byte[] image, String name) {
        context.makeCurrent();
        try (Arena arena = Arena.ofConfined()) {
            // Fatbins must be 8-byte aligned; a trailing zero also terminates PTX text.
            MemorySegment copy = arena.allocate(image.length + 1L, 64);
            MemorySegment.copy(image, 0, copy, ValueLayout.JAVA_BYTE, 0, image.length);
            MemorySegment handle;
            try {
                handle = context.driver().moduleLoadData(copy);
            } catch (CudaException e) {
                throw new CudaException(e.call() + " of " + name, e.code(), e.errorName(), e.errorString());
            }
            return new CudaModule(context, handle, name);
        }
    }

    public String name() {
        return name;
    }

    public CudaContext context() {
        return context;
    }

    /** An entry point by its (extern "C") name, looked up once. */
    public synchronized CudaFunction function(String entryPoint) {
        if (!loaded) {
            throw new IllegalStateException("module " + name + " was unloaded");
        }
        CudaFunction f = functions.get(entryPoint);
        if (f == null) {
            context.makeCurrent();
            f = new CudaFunction(this, context.driver().moduleGetFunction(handle, entryPoint), entryPoint);
            functions.put(entryPoint, f);
        }
        return f;
    }

    synchronized void checkLoaded() {
        if (!loaded) {
            throw new IllegalStateException("module " + name + " was unloaded");
        }
    }

    @Override
    public synchronized void close() {
        if (!loaded) {
            return;
        }
        loaded = false;
        functions.clear();
        context.makeCurrent();
        context.driver().moduleUnload(handle);
    }
}
