package tileattn.api;

import tileattn.tensor.FloatTensor;

/**
 * What a backend keeps from a forward pass run for training: its output and whatever its backward needs
 * (log-sum-exp, VSA's selection and pooled tensors), so the backward never recomputes the forward. Everything here
 * is in tile order; {@link AttentionTape} wraps it for raster-order callers. A tape that holds memory outside the
 * Java heap (the GPU's) frees it in {@link #close}; the CPU's tapes hold none.
 */
public interface TileOrderTape extends AutoCloseable {

    /** The forward output, [B, heads, S, d] in tile order. */
    FloatTensor out();

    /**
     * Gradients for the output gradient {@code dOut} (tile order, already checked: the output's shape, finite).
     * May be called more than once; each call gives the same result and leaves the tape unchanged.
     */
    AttentionGradients backward(FloatTensor dOut);

    /** Frees what the tape holds outside the Java heap; {@link #backward} is not called afterwards. */
    @Override
    default void close() {
    }
}
