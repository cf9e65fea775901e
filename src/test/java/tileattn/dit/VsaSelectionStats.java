package tileattn.dit;

import java.util.Arrays;
import java.util.BitSet;
import java.util.Locale;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.TileLists;
import tileattn.tensor.DType;

/**
 * Not a test: how much the VSA selections of neighbouring query tiles overlap in a Wan-2.1 1.3B step with random
 * weights (480p, B = 2, 87.5% sparsity), for the first layer (a one-layer model) and the last of thirty. A fine kernel
 * that lets neighbouring query tiles share the K/V loads of their common tiles moves the bytes of the union of their
 * selections instead of the sum, so these ratios bound what sharing can save. Run on the device with the bundle of
 * scripts/device-build.sh:
 * {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp test-classes:tileattn.jar tileattn.dit.VsaSelectionStats}
 */
public final class VsaSelectionStats {

    public static void main(String[] args) {
        WanConfig full = WanConfig.wan13b();
        Shape3 latent = new Shape3(21, 60, 104);
        int batch = 2;
        for (int layers : new int[]{1, full.layers()}) {
            WanConfig c = new WanConfig(full.name(), full.dim(), layers, full.heads(), full.ffnDim(), full.inChannels(),
                    full.outChannels(), full.patch(), full.textDim(), full.textLength(), full.freqDim(), full.eps(),
                    full.ropeTheta());
            SelfAttention.Vsa vsa = SelfAttention.Vsa.ofSparsity(new Shape3(4, 4, 4), 0.875);
            try (GpuWanModel model = GpuWanModel.open(RandomWeights.create(c, 0), DType.BF16);
                 DeviceScope scope = model.context().openScope();
                 GpuWanModel.Text text = model.condition(Noise.gaussian(1, batch, c.textLength(), c.textDim()))) {
                DeviceTensor in = DeviceTensor.upload(scope, Noise.gaussian(2, batch, c.inChannels(), latent.t(),
                        latent.h(), latent.w()), DType.F32);
                DeviceTensor velocity = scope.allocateTensor(DType.F32, batch, c.outChannels(), latent.t(), latent.h(),
                        latent.w());
                model.forwardDevice(in, new float[]{500f, 500f}, text, vsa, velocity);
                TileGrid tiles = new TileGrid(c.tokenGrid(latent), vsa.tile());
                report("layer " + (layers - 1), tiles, model.lastVsaSelection());
            }
        }
    }

    private static void report(String what, TileGrid grid, TileLists[] planes) {
        Shape3 n = grid.tiles();
        int k = planes[0].count(0);
        double neighbourW = 0, neighbourH = 0, neighbourT = 0, pairs = 0, quads = 0;
        long nW = 0, nH = 0, nT = 0, nPairs = 0, nQuads = 0;
        for (TileLists lists : planes) {
            for (int t = 0; t < n.t(); t++) {
                for (int h = 0; h < n.h(); h++) {
                    for (int w = 0; w < n.w(); w++) {
                        int a = grid.tileIndex(t, h, w);
                        if (w + 1 < n.w()) {
                            neighbourW += shared(lists, a, grid.tileIndex(t, h, w + 1)) / (double) k;
                            nW++;
                        }
                        if (h + 1 < n.h()) {
                            neighbourH += shared(lists, a, grid.tileIndex(t, h + 1, w)) / (double) k;
                            nH++;
                        }
                        if (t + 1 < n.t()) {
                            neighbourT += shared(lists, a, grid.tileIndex(t + 1, h, w)) / (double) k;
                            nT++;
                        }
                        if (w % 2 == 0 && w + 1 < n.w()) {
                            pairs += union(lists, a, grid.tileIndex(t, h, w + 1)) / (2.0 * k);
                            nPairs++;
                        }
                        if (w % 2 == 0 && h % 2 == 0 && w + 1 < n.w() && h + 1 < n.h()) {
                            quads += union(lists, a, grid.tileIndex(t, h, w + 1), grid.tileIndex(t, h + 1, w),
                                    grid.tileIndex(t, h + 1, w + 1)) / (4.0 * k);
                            nQuads++;
                        }
                    }
                }
            }
        }
        System.out.printf(Locale.ROOT, "%s: %d planes, %d tiles (%s), k = %d (random overlap %.3f)%n", what,
                planes.length, grid.tileCount(), n, k, k / (double) grid.tileCount());
        System.out.printf(Locale.ROOT, "  shared with the next tile along W %.3f, H %.3f, T %.3f (fraction of k)%n",
                neighbourW / nW, neighbourH / nH, neighbourT / nT);
        System.out.printf(Locale.ROOT, "  union / sum of selections: W pairs %.3f, 2x2 (H,W) quads %.3f%n",
                pairs / nPairs, quads / nQuads);
    }

    private static int shared(TileLists lists, int a, int b) {
        int[] x = lists.of(a);
        int[] y = lists.of(b);
        Arrays.sort(x);
        Arrays.sort(y);
        int i = 0, j = 0, same = 0;
        while (i < x.length && j < y.length) {
            if (x[i] == y[j]) {
                same++;
                i++;
                j++;
            } else if (x[i] < y[j]) {
                i++;
            } else {
                j++;
            }
        }
        return same;
    }

    private static int union(TileLists lists, int... tiles) {
        BitSet all = new BitSet();
        for (int t : tiles) {
            for (int kv : lists.of(t)) {
                all.set(kv);
            }
        }
        return all.cardinality();
    }
}
