package tileattn.dit;

/**
 * Text embeddings prepared for the cross-attentions: projected to the hidden width, then each block's keys
 * (RMS-normalised) and values. They depend on the text alone, so a sampler prepares them once for all steps.
 */
public final class TextCondition implements WanTransformer.Condition {

    final int batch;
    final int length;
    final float[][] keys;
    final float[][] values;

    TextCondition(int batch, int length, float[][] keys, float[][] values) {
        this.batch = batch;
        this.length = length;
        this.keys = keys;
        this.values = values;
    }

    @Override
    public int batch() {
        return batch;
    }

    /** Text tokens attended, after padding to the model's text length. */
    public int length() {
        return length;
    }
}
