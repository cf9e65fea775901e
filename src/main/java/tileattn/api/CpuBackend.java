package tileattn.api;

import tileattn.cpu.CpuAttention;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** The multi-threaded fp32 Vector API kernels of {@link CpuAttention}. */
public final class CpuBackend implements AttentionBackend {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return CpuAttention.dense(q, k, v, scale);
    }

    @Override
    public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
                           float scale) {
        return CpuAttention.sta(q, k, v, layout, windowsPerHead, scale);
    }

    @Override
    public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK,
                           float scale) {
        return CpuAttention.vsa(q, k, v, gate, grid, topK, scale).out();
    }
}
