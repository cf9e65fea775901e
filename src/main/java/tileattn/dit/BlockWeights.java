package tileattn.dit;

/**
 * The parameters of one Wan transformer block.
 *
 * @param modulation the block's learned {@code scale_shift_table}, 6 × dim: shift, scale and gate of the
 *     self-attention's norm, then the same three for the feed-forward's norm
 * @param selfNormQ RMSNorm weight over the whole hidden width, applied to q before RoPE (likewise the other norms)
 * @param crossNormWeight weight and bias of the affine LayerNorm before the cross-attention
 */
public record BlockWeights(float[] modulation,
                           Linear selfQ, Linear selfK, Linear selfV, Linear selfOut, float[] selfNormQ, float[] selfNormK,
                           float[] crossNormWeight, float[] crossNormBias,
                           Linear crossQ, Linear crossK, Linear crossV, Linear crossOut, float[] crossNormQ,
                           float[] crossNormK,
                           Linear ffnUp, Linear ffnDown) {
}
