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
            int kr = kOff + j * d, row = j * w;
            int i = 0;
            for (; i + 8 <= w; i += 8) {
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
                for (int dd = 0, q = qOff + i; dd < d; dd++, q += w) {
                    float kv = k[kr + dd];
                    a0 += kv * qt[q];
                    a1 += kv * qt[q + 1];
                    a2 += kv * qt[q + 2];
                    a3 += kv * qt[q + 3];
                    a4 += kv * qt[q + 4];
                    a5 += kv * qt[q + 5];
                    a6 += kv * qt[q + 6];
                    a7 += kv * qt[q + 7];
                }
                st[row + i] = a0;
                st[row + i + 1] = a1;
                st[row + i + 2] = a2;
                st[row + i + 3] = a3;
                st[row + i + 4] = a4;
                st[row + i + 5] = a5;
                st[row + i + 6] = a6;
                st[row + i + 7] = a7;
            }
            for (; i < w; i++) {
                float a = 0;
                for (int dd = 0, q = qOff + i; dd < d; dd++, q += w) {
                    a += k[kr + dd] * qt[q];
                }
                st[row + i] = a;
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
            int i = 0;
            for (; i + 8 <= w; i += 8) {
                float a0 = ot[o + i] * alpha[i], a1 = ot[o + i + 1] * alpha[i + 1];
                float a2 = ot[o + i + 2] * alpha[i + 2], a3 = ot[o + i + 3] * alpha[i + 3];
                float a4 = ot[o + i + 4] * alpha[i + 4], a5 = ot[o + i + 5] * alpha[i + 5];
                float a6 = ot[o + i + 6] * alpha[i + 6], a7 = ot[o + i + 7] * alpha[i + 7];
                for (int j = 0, vr = vOff + dd, pr = i; j < n; j++, vr += d, pr += w) {
                    float vv = v[vr];
                    a0 += vv * p[pr];
                    a1 += vv * p[pr + 1];
                    a2 += vv * p[pr + 2];
                    a3 += vv * p[pr + 3];
                    a4 += vv * p[pr + 4];
                    a5 += vv * p[pr + 5];
                    a6 += vv * p[pr + 6];
                    a7 += vv * p[pr + 7];
                }
                ot[o + i] = a0;
                ot[o + i + 1] = a1;
                ot[o + i + 2] = a2;
                ot[o + i + 3] = a3;
                ot[o + i + 4] = a4;
                ot[o + i + 5] = a5;
                ot[o + i + 6] = a6;
                ot[o + i + 7] = a7;
            }
            for (; i < w; i++) {
                float a = ot[o + i] * alpha[i];
                for (int j = 0, vr = vOff + dd, pr = i; j < n; j++, vr += d, pr += w) {
                    a += v[vr] * p[pr];
                }
                ot[o + i] = a;
            }
        }
    }
}
