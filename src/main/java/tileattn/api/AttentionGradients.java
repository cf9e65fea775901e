package tileattn.api;

import tileattn.tensor.FloatTensor;

/**
 * Gradients of an attention call with respect to its inputs, each shaped like its input and in the same token
 * order as the tensors it came from (raster order from {@link AttentionTape}, tile order from a
 * {@link TileOrderTape}).
 *
 * @param dgate the gate's gradient for a VSA call with a gate, otherwise null
 */
public record AttentionGradients(FloatTensor dq, FloatTensor dk, FloatTensor dv, FloatTensor dgate) {
}
