package tileattn.dit;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link MatmulKernel} on the Vector API. The micro-kernel holds a 4-row × 3-vector block of the output in
 * registers (12 accumulators, within the 16 registers of AVX2): each step over k issues 3 weight loads and 4
 * broadcasts for 12 fused multiply-adds. Loaded only by name, so JVMs without the incubator module never link it.
 */
public final class PanamaMatmulKernel implements MatmulKernel {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    @Override
    public String name() {
        return "vector-api-" + S.vectorBitSize() + "bit";
    }

    @Override
    public void multiplyAdd(float[] a, int k, float[] wt, int n, float[] c, int row0, int row1, int col0, int col1,
                            int k0, int k1) {
        int r = row0;
        for (; r + 4 <= row1; r += 4) {
            int j = col0;
            for (; j + 3 * L <= col1; j += 3 * L) {
                block4x3(a, k, wt, n, c, r, j, k0, k1);
            }
            for (; j + L <= col1; j += L) {
                for (int rr = r; rr < r + 4; rr++) {
                    row1x1(a, k, wt, n, c, rr, j, k0, k1);
                }
            }
            scalarColumns(a, k, wt, n, c, r, r + 4, j, col1, k0, k1);
        }
        for (; r < row1; r++) {
            int j = col0;
            for (; j + L <= col1; j += L) {
                row1x1(a, k, wt, n, c, r, j, k0, k1);
            }
            scalarColumns(a, k, wt, n, c, r, r + 1, j, col1, k0, k1);
        }
    }

    private static void block4x3(float[] a, int k, float[] wt, int n, float[] c, int r, int j, int k0, int k1) {
        int c0 = r * n + j, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
        FloatVector s00 = FloatVector.fromArray(S, c, c0), s01 = FloatVector.fromArray(S, c, c0 + L),
                s02 = FloatVector.fromArray(S, c, c0 + 2 * L);
        FloatVector s10 = FloatVector.fromArray(S, c, c1), s11 = FloatVector.fromArray(S, c, c1 + L),
                s12 = FloatVector.fromArray(S, c, c1 + 2 * L);
        FloatVector s20 = FloatVector.fromArray(S, c, c2), s21 = FloatVector.fromArray(S, c, c2 + L),
                s22 = FloatVector.fromArray(S, c, c2 + 2 * L);
        FloatVector s30 = FloatVector.fromArray(S, c, c3), s31 = FloatVector.fromArray(S, c, c3 + L),
                s32 = FloatVector.fromArray(S, c, c3 + 2 * L);
        int a0 = r * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
        for (int kk = k0; kk < k1; kk++) {
            int w = kk * n + j;
            FloatVector w0 = FloatVector.fromArray(S, wt, w);
            FloatVector w1 = FloatVector.fromArray(S, wt, w + L);
            FloatVector w2 = FloatVector.fromArray(S, wt, w + 2 * L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + kk]);
            s00 = w0.fma(x, s00);
            s01 = w1.fma(x, s01);
            s02 = w2.fma(x, s02);
            x = FloatVector.broadcast(S, a[a1 + kk]);
            s10 = w0.fma(x, s10);
            s11 = w1.fma(x, s11);
            s12 = w2.fma(x, s12);
            x = FloatVector.broadcast(S, a[a2 + kk]);
            s20 = w0.fma(x, s20);
            s21 = w1.fma(x, s21);
            s22 = w2.fma(x, s22);
            x = FloatVector.broadcast(S, a[a3 + kk]);
            s30 = w0.fma(x, s30);
            s31 = w1.fma(x, s31);
            s32 = w2.fma(x, s32);
        }
        s00.intoArray(c, c0);
        s01.intoArray(c, c0 + L);
        s02.intoArray(c, c0 + 2 * L);
        s10.intoArray(c, c1);
        s11.intoArray(c, c1 + L);
        s12.intoArray(c, c1 + 2 * L);
        s20.intoArray(c, c2);
        s21.intoArray(c, c2 + L);
        s22.intoArray(c, c2 + 2 * L);
        s30.intoArray(c, c3);
        s31.intoArray(c, c3 + L);
        s32.intoArray(c, c3 + 2 * L);
    }

    private static void row1x1(float[] a, int k, float[] wt, int n, float[] c, int r, int j, int k0, int k1) {
        int cOff = r * n + j, aOff = r * k;
        FloatVector s = FloatVector.fromArray(S, c, cOff);
        for (int kk = k0; kk < k1; kk++) {
            s = FloatVector.fromArray(S, wt, kk * n + j).fma(FloatVector.broadcast(S, a[aOff + kk]), s);
        }
        s.intoArray(c, cOff);
    }

    private static void scalarColumns(float[] a, int k, float[] wt, int n, float[] c, int r0, int r1, int j0, int j1,
                                      int k0, int k1) {
        for (int r = r0; r < r1; r++) {
            for (int j = j0; j < j1; j++) {
                float s = c[r * n + j];
                for (int kk = k0; kk < k1; kk++) {
                    s += a[r * k + kk] * wt[kk * n + j];
                }
                c[r * n + j] = s;
            }
        }
    }
}
