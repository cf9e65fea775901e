package tileattn.cpu;

/** Plain-Java {@link VectorOps}, used where the Vector API module is not in the boot layer. */
public final class ScalarVectorOps implements VectorOps {

    @Override
    public int lanes() {
        return 1;
    }

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            s0 += a[aOff + i] * b[bOff + i];
            s1 += a[aOff + i + 1] * b[bOff + i + 1];
            s2 += a[aOff + i + 2] * b[bOff + i + 2];
            s3 += a[aOff + i + 3] * b[bOff + i + 3];
        }
        for (; i < n; i++) {
            s0 += a[aOff + i] * b[bOff + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }

    @Override
    public void scale(float[] y, int off, int n, float s) {
        for (int i = 0; i < n; i++) {
            y[off + i] *= s;
        }
    }

    @Override
    public void scores(float[] k, int kOff, int n, int d, float[] qt, int qOff, int w, float[] st) {
        for (int j = 0; j < n; j++) {
            int row = j * w;
            java.util.Arrays.fill(st, row, row + w, 0f);
            for (int dd = 0; dd < d; dd++) {
                float kv = k[kOff + j * d + dd];
                int q = qOff + dd * w;
                for (int i = 0; i < w; i++) {
                    st[row + i] += kv * qt[q + i];
                }
            }
        }
    }

    @Override
    public void softmaxStep(float[] st, int n, int w, float[] m, float[] l, int rowOff, float[] alpha) {
        for (int i = 0; i < w; i++) {
            float max = m[rowOff + i];
            for (int j = 0; j < n; j++) {
                max = Math.max(max, st[j * w + i]);
            }
            float sum = 0;
            for (int j = 0; j < n; j++) {
                float e = (float) Math.exp(st[j * w + i] - max);
                st[j * w + i] = e;
                sum += e;
            }
            float a = (float) Math.exp(m[rowOff + i] - max);
            alpha[i] = a;
            l[rowOff + i] = l[rowOff + i] * a + sum;
            m[rowOff + i] = max;
        }
    }

    @Override
    public void accumulate(float[] p, int n, int w, float[] v, int vOff, int d, float[] ot, int oOff, float[] alpha) {
        for (int dd = 0; dd < d; dd++) {
            int o = oOff + dd * w;
            for (int i = 0; i < w; i++) {
                ot[o + i] *= alpha[i];
            }
            for (int j = 0; j < n; j++) {
                float vv = v[vOff + j * d + dd];
                int pr = j * w;
                for (int i = 0; i < w; i++) {
                    ot[o + i] += vv * p[pr + i];
                }
            }
        }
    }
}
