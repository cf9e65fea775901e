package tileattn.api;

import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Where attention is computed. {@link Attention} validates the inputs and reorders tokens; a backend receives
 * checked tensors [B, heads, S, d] in tile order and computes. The CPU is the one backend today.
 */
public interface AttentionBackend {

    /** A short name for messages and reports, e.g. "cpu". */
    String name();

    FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale);

    FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
                    float scale);

    /** @param gate tile order, or null for a gate of ones */
    FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK,
                    float scale);
}
