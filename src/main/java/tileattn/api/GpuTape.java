package tileattn.api;

import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;

/**
 * A training forward run by {@link GpuBackend}: the output on the host, and on the device everything the backward
 * reads (q, k, v and the gate in the computed type, the output and its log-sum-exp or VSA's workspace, the work
 * tables), all in one {@link DeviceScope} that this tape owns. {@link #backward} may run any number of times; each
 * run uploads dOut and allocates the gradients in a scope of its own, closed before it returns. {@link #close}
 * frees the forward's device memory; {@link GpuBackend#close} closes the tapes still open.
 */
final class GpuTape implements TileOrderTape {

    /** Queues the backward for {@code dOut} into the gradients (dgate null when the forward had no gate). */
    @FunctionalInterface
    interface Backward {
        void run(DeviceTensor dOut, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, DeviceTensor dgate,
                 DeviceScope scratch);
    }

    private final GpuBackend backend;
    private final DeviceScope forward;
    private final FloatTensor out;
    private final DType dtype;
    private final boolean gated;
    private final Backward backward;
    private boolean closed;

    GpuTape(GpuBackend backend, DeviceScope forward, FloatTensor out, DType dtype, boolean gated, Backward backward) {
        this.backend = backend;
        this.forward = forward;
        this.out = out;
        this.dtype = dtype;
        this.gated = gated;
        this.backward = backward;
    }

    @Override
    public FloatTensor out() {
        return out;
    }

    /** Runs on the legacy default stream, which the synchronous uploads are ordered with; waits for the result. */
    @Override
    public synchronized AttentionGradients backward(FloatTensor dOut) {
        if (closed) {
            throw new IllegalStateException("this training tape was closed: its device memory is freed");
        }
        int[] shape = out.shape();
        try (DeviceScope scratch = forward.context().openScope()) {
            DeviceTensor dO = DeviceTensor.upload(scratch, dOut, dtype);
            DeviceTensor dq = scratch.allocateTensor(dtype, shape);
            DeviceTensor dk = scratch.allocateTensor(dtype, shape);
            DeviceTensor dv = scratch.allocateTensor(dtype, shape);
            DeviceTensor dgate = gated ? scratch.allocateTensor(dtype, shape) : null;
            backward.run(dO, dq, dk, dv, dgate, scratch);
            forward.context().defaultStream().synchronize();
            return new AttentionGradients(dq.download(), dk.download(), dv.download(),
                    dgate == null ? null : dgate.download());
        }
    }

    /** Frees the forward's device memory (waiting for the device); later calls do nothing. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        // Outside this tape's lock: GpuBackend.close holds its own lock while closing tapes.
        try {
            forward.close();
        } finally {
            backend.forget(this);
        }
    }
}
