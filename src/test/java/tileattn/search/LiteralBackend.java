package tileattn.search;

import tileattn.api.AttentionBackend;
import tileattn.api.TileOrderTape;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.StaMask;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** Attention straight from the semantics' words, in double, for checking the search independently of the kernels. */
final class LiteralBackend implements AttentionBackend {

    @Override
    public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return attend(q, k, v, null, null, scale);
    }

    @Override
    public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead, float scale) {
        return attend(q, k, v, layout, windowsPerHead, scale);
    }

    @Override
    public String name() {
        return "literal double-precision reference";
    }

    @Override
    public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK, float scale) {
        throw new UnsupportedOperationException("the window search measures dense and STA attention only");
    }

    @Override
    public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        throw new UnsupportedOperationException("the window search runs forward passes only");
    }

    @Override
    public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                        Window[] windowsPerHead, float scale) {
        throw new UnsupportedOperationException("the window search runs forward passes only");
    }

    @Override
    public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                        int topK, float scale) {
        throw new UnsupportedOperationException("the window search runs forward passes only");
    }

    private static FloatTensor attend(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windows, float scale) {
        int b = q.dim(0), heads = q.dim(1), s = q.dim(2), d = q.dim(3);
        int[] tileOf = null;
        int video = s;
        if (layout != null) {
            TileGrid grid = layout.grid();
            video = grid.videoTokens();
            tileOf = new int[video];
            for (int t = 0; t < grid.tileCount(); t++) {
                for (int i = grid.tileStart(t); i < grid.tileStart(t) + grid.tileTokens(t); i++) {
                    tileOf[i] = t;
                }
            }
        }
        float[] out = new float[q.size()];
        double[] p = new double[s];
        for (int bh = 0; bh < b * heads; bh++) {
            int base = bh * s * d;
            for (int i = 0; i < s; i++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < s; j++) {
                    boolean allowed = layout == null || i >= video || j >= video
                            || StaMask.allows(layout.grid(), windows[bh % heads], tileOf[i], tileOf[j]);
                    if (!allowed) {
                        p[j] = Double.NaN;
                        continue;
                    }
                    double dot = 0;
                    for (int x = 0; x < d; x++) {
                        dot += (double) q.data()[base + i * d + x] * k.data()[base + j * d + x];
                    }
                    p[j] = dot * scale;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j < s; j++) {
                    p[j] = Double.isNaN(p[j]) ? 0 : Math.exp(p[j] - max);
                    sum += p[j];
                }
                for (int x = 0; x < d; x++) {
                    double acc = 0;
                    for (int j = 0; j < s; j++) {
                        acc += p[j] * v.data()[base + j * d + x];
                    }
                    out[base + i * d + x] = (float) (acc / sum);
                }
            }
        }
        return new FloatTensor(q.shape(), out);
    }
}
