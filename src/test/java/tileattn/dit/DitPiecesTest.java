package tileattn.dit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.tensor.FloatTensor;

/** The model's pieces against small literal references. */
class DitPiecesTest {

    /** Head dimension 12: 6 rotary pairs, split 2, 2, 2 over T, H, W. */
    private static final WanConfig D12 = new WanConfig("d12", 24, 1, 2, 32, 4, 4, new Shape3(1, 2, 2), 8, 4, 16,
            1e-6f, 10000.0);

    @Test
    void ropeSplitFollowsWan() {
        assertArrayEquals(new int[]{22, 21, 21}, WanConfig.wan13b().ropePairs());
        assertArrayEquals(new int[]{6, 5, 5}, WanConfig.tiny().ropePairs());
        assertArrayEquals(new int[]{2, 2, 2}, D12.ropePairs());
    }

    @Test
    void ropeRotatesEachPairByItsAxisPositionAndFrequency() {
        Shape3 grid = new Shape3(3, 2, 5);
        TileGrid tiles = new TileGrid(grid, new Shape3(2, 2, 2));
        int[] rasterOf = tiles.tileOrderToRaster();
        RopeTable rope = new RopeTable(D12, grid, rasterOf);
        Random rnd = new Random(3);
        float[] x = new float[12];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        // Token (t=2, h=1, w=3): pairs 0,1 turn by 2·{1, 10000^-1/2}, pairs 2,3 by 1·{..}, pairs 4,5 by 3·{..}.
        int raster = (2 * 2 + 1) * 5 + 3;
        int position = -1;
        for (int p = 0; p < rasterOf.length; p++) {
            if (rasterOf[p] == raster) {
                position = p;
            }
        }
        double[] angles = {2, 2 * 0.01, 1, 0.01, 3, 3 * 0.01};
        float[] out = new float[12];
        rope.rotate(x, 0, out, 0, position);
        for (int i = 0; i < 6; i++) {
            double c = Math.cos(angles[i]), s = Math.sin(angles[i]);
            assertEquals(x[2 * i] * c - x[2 * i + 1] * s, out[2 * i], 1e-6, "pair " + i + " even");
            assertEquals(x[2 * i] * s + x[2 * i + 1] * c, out[2 * i + 1], 1e-6, "pair " + i + " odd");
        }
    }

    @Test
    void rmsNormAndLayerNormMatchTheirFormulas() {
        float[] x = {1, 2, 3, 4, -2, 0, 2, 8};
        float[] w = {0.5f, 1, 1.5f, 2};
        float[] r = x.clone();
        Norms.rmsNorm(r, 2, 4, 0f, w);
        double rms0 = Math.sqrt((1 + 4 + 9 + 16) / 4.0), rms1 = Math.sqrt((4 + 0 + 4 + 64) / 4.0);
        assertArrayEquals(new float[]{(float) (0.5 / rms0), (float) (2 / rms0), (float) (4.5 / rms0), (float) (8 / rms0),
            (float) (-1 / rms1), 0, (float) (3 / rms1), (float) (16 / rms1)}, r, 1e-6f);

        float[] l = x.clone();
        Norms.layerNorm(l, 2, 4, 1e-6f, null, null);
        double sd0 = Math.sqrt(1.25 + 1e-6), sd1 = Math.sqrt((4 * 4 + 2 * 2 + 0 + 6 * 6) / 4.0 + 1e-6);
        assertArrayEquals(new float[]{(float) (-1.5 / sd0), (float) (-0.5 / sd0), (float) (0.5 / sd0), (float) (1.5 / sd0),
            (float) (-4 / sd1), (float) (-2 / sd1), 0, (float) (6 / sd1)}, l, 1e-5f);

        float[] a = x.clone();
        float[] bias = {0.1f, -0.1f, 0, 1};
        Norms.layerNorm(a, 2, 4, 1e-6f, w, bias);
        for (int i = 0; i < 8; i++) {
            assertEquals(l[i] * w[i % 4] + bias[i % 4], a[i], 1e-6, "affine " + i);
        }
    }

    @Test
    void modulationUsesEachBatchEntrysChunks() {
        int batch = 2, s = 2, dim = 3, chunks = 3;
        float[] table = {0, 0, 0, 1, 1, 1, 2, 2, 2};
        float[] signal = {1, 2, 3, 0.5f, 0.5f, 0.5f, -1, 0, 1,   -1, -2, -3, 0, 0, 0, 3, 3, 3};
        float[] mod = Modulation.perBatch(table, signal, batch);
        assertArrayEquals(new float[]{1, 2, 3, 1.5f, 1.5f, 1.5f, 1, 2, 3,   -1, -2, -3, 1, 1, 1, 5, 5, 5}, mod);
        float[] h = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2};
        Modulation.modulate(h, batch, s, dim, mod, chunks, 0, 1);
        // batch 0: h·2.5 + (1, 2, 3); batch 1: h·2 + (−1, −2, −3)
        assertArrayEquals(new float[]{3.5f, 4.5f, 5.5f, 6, 7, 8, 1, 0, -1, 3, 2, 1}, h);
        float[] x = new float[12];
        float[] y = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        Modulation.addGated(x, y, batch, s, dim, mod, chunks, 2);
        assertArrayEquals(new float[]{1, 2, 3, 1, 2, 3, 5, 5, 5, 5, 5, 5}, x);
        assertArrayEquals(new float[]{7, 7, 8, 8, 9, 9}, Modulation.repeatChunks(new float[]{7, 8, 9}, 3, 2));
    }

    @Test
    void patchifyPlacesVoxelsChannelMajorAndUnpatchifyInvertsIt() {
        Shape3 patch = new Shape3(1, 2, 2);
        int batch = 2, channels = 3;
        Shape3 latentShape = new Shape3(3, 4, 6);
        Shape3 grid = new Shape3(3, 2, 3);
        FloatTensor latent = gaussian(new Random(5), batch, channels, 3, 4, 6);
        int[] rasterOf = new TileGrid(grid, new Shape3(2, 2, 2)).tileOrderToRaster();
        float[] rows = Patchify.patches(latent, patch, grid, rasterOf);
        int s = grid.volume(), width = channels * patch.volume();
        for (int b = 0; b < batch; b++) {
            for (int p = 0; p < s; p++) {
                int r = rasterOf[p], gt = r / 6, gh = (r / 3) % 2, gw = r % 3;
                for (int c = 0; c < channels; c++) {
                    for (int j = 0; j < 2; j++) {
                        for (int k = 0; k < 2; k++) {
                            float expected = latent.data()[(((b * channels + c) * 3 + gt) * 4 + gh * 2 + j) * 6 + gw * 2 + k];
                            assertEquals(expected, rows[(b * s + p) * width + c * 4 + j * 2 + k]);
                        }
                    }
                }
            }
        }
        // The head's rows are ordered (i, j, k, c): reorder channel-major rows that way and go back.
        float[] channelMinor = new float[rows.length];
        for (int row = 0; row < batch * s; row++) {
            for (int c = 0; c < channels; c++) {
                for (int v = 0; v < 4; v++) {
                    channelMinor[row * width + v * channels + c] = rows[row * width + c * 4 + v];
                }
            }
        }
        FloatTensor back = Patchify.unpatchify(channelMinor, batch, channels, patch, grid, rasterOf);
        assertArrayEquals(latent.shape(), back.shape());
        assertArrayEquals(latent.data(), back.data());
        assertEquals(latentShape.volume() * batch * channels, back.size());
    }

    @Test
    void timestepEmbeddingIsCosinesThenSines() {
        float[] e = TimestepEmbedding.sinusoid(1.0, 4);
        assertArrayEquals(new float[]{(float) Math.cos(1), (float) Math.cos(0.01), (float) Math.sin(1),
            (float) Math.sin(0.01)}, e, 1e-7f);
        float[] zero = TimestepEmbedding.sinusoid(0.0, 6);
        assertArrayEquals(new float[]{1, 1, 1, 0, 0, 0}, zero);
    }

    @Test
    void activationsMatchTheirFormulas() {
        assertEquals(0.8411920, Activations.geluTanh(1f), 1e-6);
        assertEquals(-0.1588080, Activations.geluTanh(-1f), 1e-6);
        assertEquals(0, Activations.geluTanh(0f), 0);
        assertEquals(2.9963627, Activations.geluTanh(3f), 1e-6);
        float[] silu = Activations.silu(new float[]{0, 1, -2});
        assertArrayEquals(new float[]{0, (float) (1 / (1 + Math.exp(-1))), (float) (-2 / (1 + Math.exp(2)))}, silu, 1e-7f);
    }

    @Test
    void configurationsAndTheirErrors() {
        WanConfig wan = WanConfig.byName("wan-1.3b");
        assertEquals(128, wan.headDim());
        assertEquals(64, wan.patchInputs());
        assertEquals(new Shape3(21, 30, 52), wan.tokenGrid(new Shape3(21, 60, 104)));
        // The published 1.3B model has about 1.42e9 parameters.
        assertTrue(wan.parameterCount() > 1_400_000_000L && wan.parameterCount() < 1_450_000_000L,
                "parameters " + wan.parameterCount());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> wan.tokenGrid(new Shape3(21, 61, 104)));
        assertTrue(e.getMessage().contains("along H"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> WanConfig.byName("wan-14b"));
        assertTrue(e.getMessage().contains("known: wan-1.3b, tiny"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new WanConfig("odd", 30, 1, 6, 8, 4, 4, new Shape3(1, 1, 1), 8,
                4, 16, 1e-6f, 1e4));
    }

    static FloatTensor gaussian(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }
}
