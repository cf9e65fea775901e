package tileattn.cuda;

import java.lang.foreign.MemorySegment;

/**
 * A CUDA event with timing, made by {@link DeviceScope#createEvent()}. Time a region by recording one event
 * before and one after it on the same stream, then {@link #elapsedMillis(CudaEvent, CudaEvent)}.
 */
public final class CudaEvent {

    private final CudaContext context;
    private final MemorySegment handle;
    private final DeviceScope scope;

    CudaEvent(CudaContext context, MemorySegment handle, DeviceScope scope) {
        this.context = context;
        this.handle = handle;
        this.scope = scope;
    }

    MemorySegment handle() {
        scope.checkOpen();
        return handle;
    }

    /** Marks the point in the stream's queue that this event stands for. */
    public void record(CudaStream stream) {
        context.makeCurrent();
        context.driver().eventRecord(handle(), stream.handle());
    }

    /** Blocks until the recorded work has finished. */
    public void synchronize() {
        context.makeCurrent();
        context.driver().eventSynchronize(handle());
    }

    /** Milliseconds between two recorded events (resolution about half a microsecond); waits for {@code end}. */
    public static float elapsedMillis(CudaEvent start, CudaEvent end) {
        end.synchronize();
        return start.context.driver().eventElapsedMillis(start.handle(), end.handle());
    }
}
