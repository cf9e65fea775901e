package tileattn.dit;

/** {@link MatmulKernel} in plain Java, for JVMs started without {@code jdk.incubator.vector}. */
final class ScalarMatmulKernel implements MatmulKernel {

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public void multiplyAdd(float[] a, int k, float[] wt, int n, float[] c, int row0, int row1, int col0, int col1,
                            int k0, int k1) {
        for (int r = row0; r < row1; r++) {
            int cRow = r * n;
            for (int kk = k0; kk < k1; kk++) {
                float x = a[r * k + kk];
                int wRow = kk * n;
                for (int j = col0; j < col1; j++) {
                    c[cRow + j] += x * wt[wRow + j];
                }
            }
        }
    }
}
