package tileattn.dit;

/**
 * The inner loop of the model's matrix products, in fp32: {@code c[r*n + j] += Σ_{kk=k0}^{k1-1} a[r*k + kk] ·
 * wt[kk*n + j]} for rows {@code row0 ≤ r < row1} and columns {@code col0 ≤ j < col1}. The weight is stored
 * transposed ([in, out]) so every vector runs along contiguous output columns. Two implementations exist, one
 * on the Vector API and a plain-Java one, picked by {@link Matmul} at run time like the attention kernels.
 */
interface MatmulKernel {

    String name();

    void multiplyAdd(float[] a, int k, float[] wt, int n, float[] c, int row0, int row1, int col0, int col1, int k0,
                     int k1);
}
