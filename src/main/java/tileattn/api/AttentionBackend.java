package tileattn.api;

import tileattn.cpu.TokenPermutation;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Where attention is computed. {@link Attention} validates the inputs and reorders tokens; a backend receives
 * checked tensors [B, heads, S, d] in tile order and computes. Backends: {@link CpuBackend} and
 * {@link GpuBackend}.
 */
public interface AttentionBackend {

    /** A short name for messages and reports, e.g. "cpu". */
    String name();

    FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale);

    FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
                    float scale);

    /**
     * STA on raster-order tensors. The default reorders the tokens on the host around {@link #sta}; a backend that
     * reorders faster where its data lives (the GPU, on the device) overrides it.
     */
    default FloatTensor staRaster(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                  Window[] windowsPerHead, float scale) {
        FloatTensor out = sta(TokenPermutation.toTileOrder(q, layout), TokenPermutation.toTileOrder(k, layout),
                TokenPermutation.toTileOrder(v, layout), layout, windowsPerHead, scale);
        return TokenPermutation.toRaster(out, layout);
    }

    /** @param gate tile order, or null for a gate of ones */
    FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK,
                    float scale);
}
