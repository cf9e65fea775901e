package tileattn.dit;

import tileattn.tensor.FloatTensor;

/**
 * A Wan-2.1 transformer that {@link FlowMatchSampler} can sample with: {@link WanModel} on the CPU,
 * {@link GpuWanModel} on a CUDA GPU. {@code C} is the prepared text (each block's cross-attention keys and values),
 * computed once per sampling run.
 */
public interface WanTransformer<C extends WanTransformer.Condition> {

    /** Text prepared for the cross-attentions of every block. */
    interface Condition {
        /** Prompts (batch entries) it was prepared for. */
        int batch();
    }

    WanConfig config();

    /** Projects text embeddings [B, L ≤ text length, textDim] and computes every block's keys and values. */
    C condition(FloatTensor context);

    /** One forward pass: the predicted velocity [B, outChannels, T, H, W] of a latent [B, inChannels, T, H, W]. */
    FloatTensor forward(FloatTensor latent, float[] timesteps, C text, SelfAttention attention);
}
