package tileattn.dit;

import tileattn.layout.Shape3;
import tileattn.tensor.FloatTensor;

/**
 * Between latent videos [B, C, T, H, W] and token rows [B·S, ·] in a chosen token order. Each token holds one
 * patch of pt×ph×pw voxels. On the way in a token's values are ordered channel-major, (c, i, j, k), matching the
 * patch embedding's Conv3d weight [dim, C, pt, ph, pw]; on the way out they are ordered (i, j, k, c), as Wan's
 * head produces them.
 */
final class Patchify {

    private Patchify() {
    }

    /**
     * @param grid the token grid (latent / patch)
     * @param rasterOfPosition raster index of the token placed at each sequence position
     */
    static float[] patches(FloatTensor latent, Shape3 patch, Shape3 grid, int[] rasterOfPosition) {
        int batch = latent.dim(0), channels = latent.dim(1);
        int lt = latent.dim(2), lh = latent.dim(3), lw = latent.dim(4);
        int pv = patch.volume(), width = channels * pv, s = rasterOfPosition.length;
        float[] src = latent.data(), rows = new float[batch * s * width];
        for (int b = 0; b < batch; b++) {
            for (int p = 0; p < s; p++) {
                int raster = rasterOfPosition[p];
                int gt = raster / (grid.h() * grid.w()), gh = (raster / grid.w()) % grid.h(), gw = raster % grid.w();
                int row = (b * s + p) * width;
                for (int c = 0; c < channels; c++) {
                    for (int i = 0; i < patch.t(); i++) {
                        for (int j = 0; j < patch.h(); j++) {
                            int voxel = (((b * channels + c) * lt + gt * patch.t() + i) * lh + gh * patch.h() + j) * lw
                                    + gw * patch.w();
                            int dst = row + c * pv + (i * patch.h() + j) * patch.w();
                            System.arraycopy(src, voxel, rows, dst, patch.w());
                        }
                    }
                }
            }
        }
        return rows;
    }

    static FloatTensor unpatchify(float[] rows, int batch, int channels, Shape3 patch, Shape3 grid,
                                  int[] rasterOfPosition) {
        int pv = patch.volume(), width = channels * pv, s = rasterOfPosition.length;
        int lt = grid.t() * patch.t(), lh = grid.h() * patch.h(), lw = grid.w() * patch.w();
        FloatTensor out = FloatTensor.zeros(batch, channels, lt, lh, lw);
        float[] dst = out.data();
        for (int b = 0; b < batch; b++) {
            for (int p = 0; p < s; p++) {
                int raster = rasterOfPosition[p];
                int gt = raster / (grid.h() * grid.w()), gh = (raster / grid.w()) % grid.h(), gw = raster % grid.w();
                int row = (b * s + p) * width;
                for (int i = 0; i < patch.t(); i++) {
                    for (int j = 0; j < patch.h(); j++) {
                        for (int k = 0; k < patch.w(); k++) {
                            int src = row + ((i * patch.h() + j) * patch.w() + k) * channels;
                            for (int c = 0; c < channels; c++) {
                                dst[(((b * channels + c) * lt + gt * patch.t() + i) * lh + gh * patch.h() + j) * lw
                                        + gw * patch.w() + k] = rows[src + c];
                            }
                        }
                    }
                }
            }
        }
        return out;
    }
}
