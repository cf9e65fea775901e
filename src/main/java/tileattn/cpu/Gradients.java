package tileattn.cpu;

import tileattn.tensor.FloatTensor;

/**
 * Gradients of an attention call with respect to its inputs, each shaped like the input and in the same token
 * order; {@code dgate} is null unless the call was a VSA call with a gate.
 */
public record Gradients(FloatTensor dq, FloatTensor dk, FloatTensor dv, FloatTensor dgate) {
}
