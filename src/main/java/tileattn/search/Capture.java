package tileattn.search;

import java.io.IOException;
import tileattn.tensor.FloatTensor;

/**
 * The inputs of one attention call of a model: one denoising step, one layer. Several captures of the same step
 * and layer (different prompts or seeds) are averaged by the search.
 */
public interface Capture {

    int step();

    int layer();

    /** How to name it in messages: a file path, or the example's step and layer. */
    String name();

    /** q, k, v as [B, heads, S, d] in raster order (video tokens T-major, then text). */
    Qkv load() throws IOException;

    record Qkv(FloatTensor q, FloatTensor k, FloatTensor v) {
    }
}
