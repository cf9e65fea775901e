package tileattn.api;

import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Where attention is computed. {@link Attention} validates the inputs and reorders tokens; a backend receives
 * checked tensors [B, heads, S, d] in tile order and computes. The CPU is the one backend today.
 *
 * <p>The {@code ...ForTraining} methods run the same forward and return a {@link TileOrderTape} that can run the
 * backward. A tape may keep the tensors it was given: the caller hands over tensors nobody else modifies.
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

    TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale);

    TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                 Window[] windowsPerHead, float scale);

    /** @param gate tile order, or null for a gate of ones (the tape then gives no {@code dgate}) */
    TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                 int topK, float scale);
}
