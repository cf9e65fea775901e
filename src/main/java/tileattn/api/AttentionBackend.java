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
 *
 * <p>The {@code ...ForTraining} methods run the same forward and return a {@link TileOrderTape} that can run the
 * backward. A tape may keep the tensors it was given: the caller hands over tensors nobody else modifies. A tape
 * may hold memory outside the Java heap until its {@link TileOrderTape#close}.
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

    /**
     * VSA on raster-order tensors (the gate too, or null). The default reorders on the host around {@link #vsa}; the
     * GPU reorders on the device.
     */
    default FloatTensor vsaRaster(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                  int topK, float scale) {
        FloatTensor out = vsa(TokenPermutation.toTileOrder(q, grid), TokenPermutation.toTileOrder(k, grid),
                TokenPermutation.toTileOrder(v, grid), gate == null ? null : TokenPermutation.toTileOrder(gate, grid),
                grid, topK, scale);
        return TokenPermutation.toRaster(out, grid);
    }

    TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale);

    TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                 Window[] windowsPerHead, float scale);

    /** @param gate tile order, or null for a gate of ones (the tape then gives no {@code dgate}) */
    TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                 int topK, float scale);
}
