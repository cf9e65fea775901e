package tileattn.api;

import java.util.Arrays;
import java.util.function.UnaryOperator;
import tileattn.tensor.FloatTensor;

/**
 * A forward pass run for training, from {@link Attention#forwardForTraining}: its output and what the backend kept
 * to run the backward (the inputs in tile order, the output, its log-sum-exp or VSA's selection and pooled tensors),
 * so {@link #backward} never recomputes the forward. Everything it returns is in raster order, like the inputs.
 *
 * <p>{@link #backward} may be called any number of times, e.g. for several losses on one output; each call gives
 * the same gradients for the same {@code dOut}. The tape holds the forward's memory until {@link #close}: on the GPU
 * that is device memory (the inputs, output and log-sum-exp or VSA's workspace), which only {@code close} (or closing
 * the {@link GpuBackend}) frees, so use the tape in try-with-resources or close it after the last backward. Closing
 * a CPU tape frees nothing but is just as final: {@link #backward} then throws {@link IllegalStateException}, on
 * every backend alike. {@link #output()} stays readable.
 */
public final class AttentionTape implements AutoCloseable {

    private final TileOrderTape tape;
    private final UnaryOperator<FloatTensor> toTileOrder;
    private final UnaryOperator<FloatTensor> toRaster;
    private final int[] outputShape;
    private final boolean gated;
    private final FloatTensor output;
    private volatile boolean closed;

    AttentionTape(TileOrderTape tape, UnaryOperator<FloatTensor> toTileOrder, UnaryOperator<FloatTensor> toRaster,
                  int[] outputShape, boolean gated) {
        this.tape = tape;
        this.toTileOrder = toTileOrder;
        this.toRaster = toRaster;
        this.outputShape = outputShape.clone();
        this.gated = gated;
        this.output = toRaster.apply(tape.out());
    }

    /** The attention output [batch, heads, S, d] in raster order, as {@link Attention#attend} returns it. */
    public FloatTensor output() {
        return output;
    }

    /** Whether the forward was VSA with a gate, so {@link #backward} also returns {@code dgate}. */
    public boolean hasGate() {
        return gated;
    }

    /**
     * Gradients of q, k, v (and of the gate when {@link #hasGate()}) for the gradient {@code dOut} of a loss with
     * respect to {@link #output()}. {@code dOut} must have the output's shape, raster order, and be finite: NaN or
     * infinity is rejected like in the forward, naming the first bad index.
     *
     * @throws IllegalStateException after {@link #close}
     */
    public AttentionGradients backward(FloatTensor dOut) {
        if (closed) {
            throw new IllegalStateException("this AttentionTape was closed; run the forward again to get gradients");
        }
        if (dOut == null) {
            throw new IllegalArgumentException("dOut is null");
        }
        if (!Arrays.equals(dOut.shape(), outputShape)) {
            throw new IllegalArgumentException("dOut must have the output's shape "
                    + Arrays.toString(outputShape) + ", got " + dOut.shapeString());
        }
        InputChecks.finite(dOut, "dOut");
        AttentionGradients g = tape.backward(toTileOrder.apply(dOut));
        if (gated != (g.dgate() != null)) {
            throw new IllegalStateException("backend " + (gated ? "gave no gate gradient for a gated VSA call"
                    : "gave a gate gradient for a call without a gate"));
        }
        return new AttentionGradients(toRaster.apply(g.dq()), toRaster.apply(g.dk()), toRaster.apply(g.dv()),
                gated ? toRaster.apply(g.dgate()) : null);
    }

    /** Frees what the backend kept for the backward (device memory on the GPU); later calls do nothing. */
    @Override
    public void close() {
        closed = true;
        tape.close();
    }
}
