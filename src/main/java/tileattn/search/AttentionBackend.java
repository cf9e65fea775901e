package tileattn.search;

import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * The attention the search measures with. Tensors are [B, heads, S, d] in tile order (video tokens tile by
 * tile, then text), outputs likewise.
 */
public interface AttentionBackend {

    FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale);

    FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead, float scale);

    /** Where it runs, for the report (e.g. "CPU, 2 threads"). */
    String description();
}
