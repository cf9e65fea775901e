package tileattn.cpu;

import tileattn.tensor.FloatTensor;

/**
 * The output of an attention forward pass and, per query row, the log-sum-exp of its scaled scores over the keys
 * it attended ({@code lse} shaped [B, heads, S], natural log; −∞ for a row that attended no key). Backward
 * passes recompute probabilities as exp(score − lse).
 */
public record AttentionResult(FloatTensor out, FloatTensor lse) {
}
