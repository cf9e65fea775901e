package tileattn.dit;

import java.util.stream.IntStream;
import tileattn.cpu.VectorOpsProvider;

/**
 * Multi-threaded fp32 matrix products for the CPU model: {@code out[m, n] = a[m, k] · wt[k, n] (+ bias)}. Work is
 * cut into blocks of rows × panels of columns, one block per task; within a block the k dimension is walked in
 * slices so the weight panel and the rows being multiplied stay in cache.
 */
public final class Matmul {

    static final int ROW_BLOCK = 64;
    /** A multiple of 3 vectors for 4-, 8- and 16-lane species, the micro-kernel's width. */
    static final int COL_PANEL = 192;
    static final int K_SLICE = 256;

    private static final MatmulKernel KERNEL = choose();

    private Matmul() {
    }

    /** The kernel in use, for logs: "vector-api-512bit" or "scalar". */
    public static String kernelName() {
        return KERNEL.name();
    }

    /** {@code x[rows, in] · Wᵀ + b}, shaped [rows, out]. */
    public static float[] linear(float[] x, int rows, Linear layer) {
        return multiply(x, rows, layer.in(), layer.weightT(), layer.out(), layer.bias(), KERNEL);
    }

    /** {@code a[m, k] · wt[k, n] + bias[n]} (bias may be null). */
    public static float[] multiply(float[] a, int m, int k, float[] wt, int n, float[] bias) {
        return multiply(a, m, k, wt, n, bias, KERNEL);
    }

    static float[] multiply(float[] a, int m, int k, float[] wt, int n, float[] bias, MatmulKernel kernel) {
        if ((long) m * k != a.length || (long) k * n != wt.length || (bias != null && bias.length != n)) {
            throw new IllegalArgumentException("matmul of [" + m + ", " + k + "] (" + a.length + " values) by [" + k
                    + ", " + n + "] (" + wt.length + " values)" + (bias == null ? "" : " + bias of " + bias.length));
        }
        float[] out = new float[Math.multiplyExact(m, n)];
        int rowBlocks = (m + ROW_BLOCK - 1) / ROW_BLOCK;
        int panels = (n + COL_PANEL - 1) / COL_PANEL;
        IntStream items = IntStream.range(0, rowBlocks * panels);
        if ((long) m * n * k > 1L << 18) {
            items = items.parallel();
        }
        items.forEach(item -> {
            int row0 = (item / panels) * ROW_BLOCK, row1 = Math.min(m, row0 + ROW_BLOCK);
            int col0 = (item % panels) * COL_PANEL, col1 = Math.min(n, col0 + COL_PANEL);
            if (bias != null) {
                for (int r = row0; r < row1; r++) {
                    System.arraycopy(bias, col0, out, r * n + col0, col1 - col0);
                }
            }
            for (int k0 = 0; k0 < k; k0 += K_SLICE) {
                kernel.multiplyAdd(a, k, wt, n, out, row0, row1, col0, col1, k0, Math.min(k, k0 + K_SLICE));
            }
        });
        return out;
    }

    static MatmulKernel scalarKernel() {
        return new ScalarMatmulKernel();
    }

    /** The Vector API kernel where the module is present, otherwise the plain-Java one. */
    static MatmulKernel vectorOrScalarKernel() {
        if (!VectorOpsProvider.vectorApiAvailable()) {
            return new ScalarMatmulKernel();
        }
        try {
            return (MatmulKernel) Class.forName("tileattn.dit.PanamaMatmulKernel").getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            return new ScalarMatmulKernel();
        }
    }

    private static MatmulKernel choose() {
        if ("scalar".equalsIgnoreCase(System.getProperty(VectorOpsProvider.PROPERTY, ""))) {
            return new ScalarMatmulKernel();
        }
        return vectorOrScalarKernel();
    }
}
