package tileattn.kernels;

import java.util.Arrays;
import tileattn.layout.TileGrid;
import tileattn.tensor.FloatTensor;

/**
 * Detects inputs whose VSA top-k selection is not well defined in reduced precision, so that GPU tests compare
 * against the CPU only where both must pick the same tiles.
 */
public final class CoarseTies {

    private CoarseTies() {
    }

    /**
     * Whether some query tile's k-th and (k+1)-th coarse scores, computed in double from tile-order q and k, are
     * within {@code gap}.
     */
    public static boolean nearTie(FloatTensor q, FloatTensor k, TileGrid grid, int topK, float scale, double gap) {
        int tiles = grid.tileCount();
        if (topK == tiles) {
            return false;
        }
        double[][] pq = pool(q, grid), pk = pool(k, grid);
        int d = q.dim(3), planes = q.dim(0) * q.dim(1);
        for (int p = 0; p < planes; p++) {
            for (int qt = 0; qt < tiles; qt++) {
                double[] row = new double[tiles];
                for (int kt = 0; kt < tiles; kt++) {
                    double dot = 0;
                    for (int i = 0; i < d; i++) {
                        dot += pq[p * tiles + qt][i] * pk[p * tiles + kt][i];
                    }
                    row[kt] = dot * scale;
                }
                Arrays.sort(row);
                if (row[tiles - topK] - row[tiles - topK - 1] < gap) {
                    return true;
                }
            }
        }
        return false;
    }

    private static double[][] pool(FloatTensor x, TileGrid grid) {
        int planes = x.dim(0) * x.dim(1), s = x.dim(2), d = x.dim(3), tiles = grid.tileCount();
        int[] starts = grid.tileStarts();
        double[][] pooled = new double[planes * tiles][d];
        for (int p = 0; p < planes; p++) {
            for (int t = 0; t < tiles; t++) {
                for (int r = starts[t]; r < starts[t + 1]; r++) {
                    for (int i = 0; i < d; i++) {
                        pooled[p * tiles + t][i] += x.data()[(p * s + r) * d + i];
                    }
                }
                for (int i = 0; i < d; i++) {
                    pooled[p * tiles + t][i] /= starts[t + 1] - starts[t];
                }
            }
        }
        return pooled;
    }
}
