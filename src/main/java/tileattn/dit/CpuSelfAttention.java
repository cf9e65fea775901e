package tileattn.dit;

import tileattn.cpu.CpuAttention;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** Runs a {@link SelfAttention} of one layer with the CPU kernels on q, k, v [B, heads, S, d] in tile order. */
final class CpuSelfAttention {

    private CpuSelfAttention() {
    }

    static FloatTensor attend(SelfAttention attention, FloatTensor q, FloatTensor k, FloatTensor v, int layer,
                              TileGrid grid) {
        float scale = CpuAttention.defaultScale(q.dim(3));
        return switch (attention) {
            case SelfAttention.Dense dense -> CpuAttention.dense(q, k, v, scale);
            case SelfAttention.Sta sta -> CpuAttention.sta(q, k, v, new TokenLayout(grid, 0),
                    windows(sta, layer, q.dim(1), grid), scale);
            case SelfAttention.Vsa vsa -> CpuAttention.vsa(q, k, v, FloatTensor.zeros(q.shape()), grid,
                    vsa.keep(grid.tileCount()), scale).out();
        };
    }

    /** The layer's windows, checked against the head count and the tile grid with the layer and head named. */
    static Window[] windows(SelfAttention.Sta sta, int layer, int heads, TileGrid grid) {
        Window[] w = sta.windows().windows(sta.step(), layer);
        if (w == null || w.length != heads) {
            throw new IllegalArgumentException("STA at step " + sta.step() + ", layer " + layer + ": expected " + heads
                    + " windows (one per head), got " + (w == null ? "none" : w.length));
        }
        for (int h = 0; h < heads; h++) {
            if (w[h] == null) {
                throw new IllegalArgumentException("STA at step " + sta.step() + ", layer " + layer + ": head " + h
                        + " has no window");
            }
            try {
                w[h].checkFits(grid.tiles());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("STA at step " + sta.step() + ", layer " + layer + ", head " + h
                        + " (tiles of " + grid.tile() + " over " + grid.video() + " tokens): " + e.getMessage(), e);
            }
        }
        return w;
    }
}
