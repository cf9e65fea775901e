package tileattn.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A CUDA stream: work queued on it runs in order. Made by {@link DeviceScope#createStream()} (destroyed with the
 * scope) or {@link CudaContext#defaultStream()}.
 */
public final class CudaStream {

    private final CudaContext context;
    private final MemorySegment handle;
    private final boolean owned;

    CudaStream(CudaContext context, MemorySegment handle, boolean owned) {
        this.context = context;
        this.handle = handle;
        this.owned = owned;
    }

    /** The CUstream (NULL for the default stream). */
    public MemorySegment handle() {
        return handle;
    }

    public CudaContext context() {
        return context;
    }

    /** Blocks until all work queued so far has finished. */
    public void synchronize() {
        context.makeCurrent();
        context.driver().streamSynchronize(handle);
    }

    /** Later work on this stream waits until the event's recorded work is done (no host blocking). */
    public void waitFor(CudaEvent event) {
        context.makeCurrent();
        context.driver().streamWaitEvent(handle, event.handle());
    }

    @Override
    public String toString() {
        return owned ? "CudaStream[0x" + Long.toHexString(handle.address()) + "]" : "CudaStream[default]";
    }
}
