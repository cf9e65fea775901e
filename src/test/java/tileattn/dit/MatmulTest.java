package tileattn.dit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.cpu.VectorOpsProvider;
import tileattn.tensor.FloatTensor;

/** Both matmul kernels against a double-precision product, on shapes that hit every block and tail path. */
class MatmulTest {

    private static final int[][] SHAPES = {
        {1, 1, 1}, {3, 5, 7}, {4, 17, 48}, {7, 13, 50}, {65, 300, 200}, {130, 257, 193}, {9, 64, 1},
    };

    @Test
    void vectorKernelMatchesDoubleReference() {
        MatmulKernel kernel = Matmul.vectorOrScalarKernel();
        assertEquals(VectorOpsProvider.vectorApiAvailable(), kernel.name().startsWith("vector-api"), kernel.name());
        check(kernel);
    }

    @Test
    void scalarKernelMatchesDoubleReference() {
        check(Matmul.scalarKernel());
    }

    private static void check(MatmulKernel kernel) {
        Random rnd = new Random(11);
        for (int[] s : SHAPES) {
            int m = s[0], k = s[1], n = s[2];
            float[] a = random(rnd, m * k), wt = random(rnd, k * n), bias = random(rnd, n);
            for (float[] b : new float[][]{bias, null}) {
                float[] c = Matmul.multiply(a, m, k, wt, n, b, kernel);
                for (int r = 0; r < m; r++) {
                    for (int j = 0; j < n; j++) {
                        double sum = b == null ? 0 : b[j];
                        double abs = Math.abs(sum);
                        for (int kk = 0; kk < k; kk++) {
                            sum += (double) a[r * k + kk] * wt[kk * n + j];
                            abs += Math.abs((double) a[r * k + kk] * wt[kk * n + j]);
                        }
                        assertEquals(sum, c[r * n + j], 1e-6 * abs + 1e-7,
                                kernel.name() + " " + m + "x" + k + "x" + n + " at (" + r + ", " + j + ")");
                    }
                }
            }
        }
    }

    @Test
    void linearKeepsPyTorchsLayoutAndAppliesTheBias() {
        // W = [[1, 2, 3], [4, 5, 6]] (out 2, in 3), b = [10, 20]; x = [1, 0, -1] → [1 - 3 + 10, 4 - 6 + 20].
        Linear layer = Linear.fromPyTorch(new FloatTensor(new int[]{2, 3}, new float[]{1, 2, 3, 4, 5, 6}),
                new FloatTensor(new int[]{2}, new float[]{10, 20}));
        assertEquals(3, layer.in());
        assertEquals(2, layer.out());
        assertArrayEquals(new float[]{1, 4, 2, 5, 3, 6}, layer.weightT());
        assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, layer.weight());
        assertArrayEquals(new float[]{8, 18, 15, 31}, layer.apply(new float[]{1, 0, -1, 0, 1, 1}, 2));
    }

    @Test
    void transposeOfOddRectangles() {
        Random rnd = new Random(2);
        for (int[] s : new int[][]{{1, 1}, {3, 70}, {129, 65}}) {
            float[] x = random(rnd, s[0] * s[1]);
            float[] t = Linear.transpose(x, s[0], s[1]);
            for (int r = 0; r < s[0]; r++) {
                for (int c = 0; c < s[1]; c++) {
                    assertEquals(x[r * s[1] + c], t[c * s[0] + r]);
                }
            }
            assertArrayEquals(x, Linear.transpose(t, s[1], s[0]));
        }
    }

    @Test
    void mismatchedSizesAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Matmul.multiply(new float[6], 2, 3, new float[7], 2, null));
        assertTrue(e.getMessage().contains("[2, 3]"), e.getMessage());
    }

    private static float[] random(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
