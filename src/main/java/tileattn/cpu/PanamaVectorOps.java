package tileattn.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link VectorOps} on the Vector API with the preferred species. Loaded only by name from
 * {@link VectorOpsProvider}, so nothing else in tileattn links against the incubator module.
 *
 * <p>The block kernels keep a 4 × 4 tile of accumulators in registers (4 keys or 4 head dimensions by 4
 * vectors of query rows): each inner step issues 8 loads for 16 fused multiply-adds.
 */
public final class PanamaVectorOps implements VectorOps {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private static final float LOG2E = 1.44269504f;
    /** ln 2 split in two so that n·LN2_HI is exact for the exponents that occur. */
    private static final float LN2_HI = 0.693145752f;
    private static final float LN2_LO = 1.42860677e-6f;
    /** 1.5·2²³: adding it rounds a float to an integer held in the low mantissa bits. */
    private static final float ROUND_MAGIC = 12582912f;

    @Override
    public int lanes() {
        return L;
    }

    @Override
    public String name() {
        return "vector-api-" + S.vectorBitSize() + "bit";
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S);
        int i = 0;
        for (; i + 2 * L <= n; i += 2 * L) {
            s0 = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), s0);
            s1 = FloatVector.fromArray(S, a, aOff + i + L).fma(FloatVector.fromArray(S, b, bOff + i + L), s1);
        }
        for (; i + L <= n; i += L) {
            s0 = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), s0);
        }
        float sum = s0.add(s1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        FloatVector a = FloatVector.broadcast(S, alpha);
        int i = 0;
        for (; i + L <= n; i += L) {
            a.fma(FloatVector.fromArray(S, x, xOff + i), FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }

    @Override
    public void scale(float[] y, int off, int n, float s) {
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector.fromArray(S, y, off + i).mul(s).intoArray(y, off + i);
        }
        for (; i < n; i++) {
            y[off + i] *= s;
        }
    }

    @Override
    public void scores(float[] k, int kOff, int n, int d, float[] qt, int qOff, int w, float[] st) {
        int i = 0;
        for (; i + 4 * L <= w; i += 4 * L) {
            int j = 0;
            for (; j + 4 <= n; j += 4) {
                scores4x4(k, kOff + j * d, d, qt, qOff + i, w, st, j * w + i);
            }
            for (; j < n; j++) {
                scores1x4(k, kOff + j * d, d, qt, qOff + i, w, st, j * w + i);
            }
        }
        for (; i < w; i += L) {
            int j = 0;
            for (; j + 4 <= n; j += 4) {
                scores4x1(k, kOff + j * d, d, qt, qOff + i, w, st, j * w + i);
            }
            for (; j < n; j++) {
                FloatVector a = FloatVector.zero(S);
                int kr = kOff + j * d;
                for (int dd = 0, q = qOff + i; dd < d; dd++, q += w) {
                    a = FloatVector.fromArray(S, qt, q).fma(FloatVector.broadcast(S, k[kr + dd]), a);
                }
                a.intoArray(st, j * w + i);
            }
        }
    }

    /** Four keys (rows of k from kr, stride d) against four query vectors. */
    private static void scores4x4(float[] k, int kr, int d, float[] qt, int q, int w, float[] st, int s) {
        FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int k1 = kr + d, k2 = kr + 2 * d, k3 = kr + 3 * d;
        for (int dd = 0; dd < d; dd++, q += w) {
            FloatVector q0 = FloatVector.fromArray(S, qt, q);
            FloatVector q1 = FloatVector.fromArray(S, qt, q + L);
            FloatVector q2 = FloatVector.fromArray(S, qt, q + 2 * L);
            FloatVector q3 = FloatVector.fromArray(S, qt, q + 3 * L);
            FloatVector b = FloatVector.broadcast(S, k[kr + dd]);
            a00 = q0.fma(b, a00);
            a01 = q1.fma(b, a01);
            a02 = q2.fma(b, a02);
            a03 = q3.fma(b, a03);
            b = FloatVector.broadcast(S, k[k1 + dd]);
            a10 = q0.fma(b, a10);
            a11 = q1.fma(b, a11);
            a12 = q2.fma(b, a12);
            a13 = q3.fma(b, a13);
            b = FloatVector.broadcast(S, k[k2 + dd]);
            a20 = q0.fma(b, a20);
            a21 = q1.fma(b, a21);
            a22 = q2.fma(b, a22);
            a23 = q3.fma(b, a23);
            b = FloatVector.broadcast(S, k[k3 + dd]);
            a30 = q0.fma(b, a30);
            a31 = q1.fma(b, a31);
            a32 = q2.fma(b, a32);
            a33 = q3.fma(b, a33);
        }
        a00.intoArray(st, s);
        a01.intoArray(st, s + L);
        a02.intoArray(st, s + 2 * L);
        a03.intoArray(st, s + 3 * L);
        s += w;
        a10.intoArray(st, s);
        a11.intoArray(st, s + L);
        a12.intoArray(st, s + 2 * L);
        a13.intoArray(st, s + 3 * L);
        s += w;
        a20.intoArray(st, s);
        a21.intoArray(st, s + L);
        a22.intoArray(st, s + 2 * L);
        a23.intoArray(st, s + 3 * L);
        s += w;
        a30.intoArray(st, s);
        a31.intoArray(st, s + L);
        a32.intoArray(st, s + 2 * L);
        a33.intoArray(st, s + 3 * L);
    }

    private static void scores1x4(float[] k, int kr, int d, float[] qt, int q, int w, float[] st, int s) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        for (int dd = 0; dd < d; dd++, q += w) {
            FloatVector b = FloatVector.broadcast(S, k[kr + dd]);
            a0 = FloatVector.fromArray(S, qt, q).fma(b, a0);
            a1 = FloatVector.fromArray(S, qt, q + L).fma(b, a1);
            a2 = FloatVector.fromArray(S, qt, q + 2 * L).fma(b, a2);
            a3 = FloatVector.fromArray(S, qt, q + 3 * L).fma(b, a3);
        }
        a0.intoArray(st, s);
        a1.intoArray(st, s + L);
        a2.intoArray(st, s + 2 * L);
        a3.intoArray(st, s + 3 * L);
    }

    private static void scores4x1(float[] k, int kr, int d, float[] qt, int q, int w, float[] st, int s) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        int k1 = kr + d, k2 = kr + 2 * d, k3 = kr + 3 * d;
        for (int dd = 0; dd < d; dd++, q += w) {
            FloatVector qv = FloatVector.fromArray(S, qt, q);
            a0 = qv.fma(FloatVector.broadcast(S, k[kr + dd]), a0);
            a1 = qv.fma(FloatVector.broadcast(S, k[k1 + dd]), a1);
            a2 = qv.fma(FloatVector.broadcast(S, k[k2 + dd]), a2);
            a3 = qv.fma(FloatVector.broadcast(S, k[k3 + dd]), a3);
        }
        a0.intoArray(st, s);
        a1.intoArray(st, s + w);
        a2.intoArray(st, s + 2 * w);
        a3.intoArray(st, s + 3 * w);
    }

    @Override
    public void softmaxStep(float[] st, int n, int w, float[] m, float[] l, int rowOff, float[] alpha) {
        for (int i = 0; i < w; i += L) {
            FloatVector old = FloatVector.fromArray(S, m, rowOff + i);
            FloatVector max = old;
            for (int j = 0, p = i; j < n; j++, p += w) {
                max = max.max(FloatVector.fromArray(S, st, p));
            }
            FloatVector sum = FloatVector.zero(S);
            for (int j = 0, p = i; j < n; j++, p += w) {
                FloatVector e = exp(FloatVector.fromArray(S, st, p).sub(max));
                e.intoArray(st, p);
                sum = sum.add(e);
            }
            FloatVector a = exp(old.sub(max));
            a.intoArray(alpha, i);
            FloatVector.fromArray(S, l, rowOff + i).fma(a, sum).intoArray(l, rowOff + i);
            max.intoArray(m, rowOff + i);
        }
    }

    /**
     * e^x for x &lt;= 0 (scores minus their running maximum), to about 1 ulp: x = n·ln2 + r with |r| &lt;= ln2/2, a
     * degree-7 Taylor polynomial for e^r and 2^n built in the exponent bits. Below −87.3 the result is clamped to
     * the smallest normal (≈1e−38) instead of 0; it only ever multiplies sums that are themselves 0 or dominated.
     * NaN propagates. On AVX-512 this takes about 2/3 of the time of VectorOperators.EXP, which made the softmax
     * step a fifth of the attention time.
     */
    private static FloatVector exp(FloatVector x) {
        x = x.max(-87.33f);
        FloatVector shifted = x.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND_MAGIC));
        FloatVector n = shifted.sub(ROUND_MAGIC);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(FloatVector.broadcast(S, 1f / 5040), FloatVector.broadcast(S, 1f / 720));
        p = p.fma(r, FloatVector.broadcast(S, 1f / 120));
        p = p.fma(r, FloatVector.broadcast(S, 1f / 24));
        p = p.fma(r, FloatVector.broadcast(S, 1f / 6));
        p = p.fma(r, FloatVector.broadcast(S, 0.5f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        p = p.fma(r, FloatVector.broadcast(S, 1f));
        IntVector bits = shifted.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND_MAGIC) - 127)
                .lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    @Override
    public void accumulate(float[] p, int n, int w, float[] v, int vOff, int d, float[] ot, int oOff, float[] alpha) {
        int i = 0;
        for (; i + 4 * L <= w; i += 4 * L) {
            int dd = 0;
            for (; dd + 4 <= d; dd += 4) {
                accumulate4x4(p, n, w, i, v, vOff + dd, d, ot, oOff + dd * w + i, alpha);
            }
            for (; dd < d; dd++) {
                accumulate1x4(p, n, w, i, v, vOff + dd, d, ot, oOff + dd * w + i, alpha);
            }
        }
        for (; i < w; i += L) {
            FloatVector al = FloatVector.fromArray(S, alpha, i);
            for (int dd = 0; dd < d; dd++) {
                int o = oOff + dd * w + i;
                FloatVector a = FloatVector.fromArray(S, ot, o).mul(al);
                for (int j = 0, vr = vOff + dd, pr = i; j < n; j++, vr += d, pr += w) {
                    a = FloatVector.fromArray(S, p, pr).fma(FloatVector.broadcast(S, v[vr]), a);
                }
                a.intoArray(ot, o);
            }
        }
    }

    /** Four head dimensions (from column vc of v) for four query vectors starting at row i. */
    private static void accumulate4x4(float[] p, int n, int w, int i, float[] v, int vc, int d, float[] ot, int o,
            float[] alpha) {
        FloatVector al0 = FloatVector.fromArray(S, alpha, i);
        FloatVector al1 = FloatVector.fromArray(S, alpha, i + L);
        FloatVector al2 = FloatVector.fromArray(S, alpha, i + 2 * L);
        FloatVector al3 = FloatVector.fromArray(S, alpha, i + 3 * L);
        int o1 = o + w, o2 = o + 2 * w, o3 = o + 3 * w;
        FloatVector a00 = FloatVector.fromArray(S, ot, o).mul(al0);
        FloatVector a01 = FloatVector.fromArray(S, ot, o + L).mul(al1);
        FloatVector a02 = FloatVector.fromArray(S, ot, o + 2 * L).mul(al2);
        FloatVector a03 = FloatVector.fromArray(S, ot, o + 3 * L).mul(al3);
        FloatVector a10 = FloatVector.fromArray(S, ot, o1).mul(al0);
        FloatVector a11 = FloatVector.fromArray(S, ot, o1 + L).mul(al1);
        FloatVector a12 = FloatVector.fromArray(S, ot, o1 + 2 * L).mul(al2);
        FloatVector a13 = FloatVector.fromArray(S, ot, o1 + 3 * L).mul(al3);
        FloatVector a20 = FloatVector.fromArray(S, ot, o2).mul(al0);
        FloatVector a21 = FloatVector.fromArray(S, ot, o2 + L).mul(al1);
        FloatVector a22 = FloatVector.fromArray(S, ot, o2 + 2 * L).mul(al2);
        FloatVector a23 = FloatVector.fromArray(S, ot, o2 + 3 * L).mul(al3);
        FloatVector a30 = FloatVector.fromArray(S, ot, o3).mul(al0);
        FloatVector a31 = FloatVector.fromArray(S, ot, o3 + L).mul(al1);
        FloatVector a32 = FloatVector.fromArray(S, ot, o3 + 2 * L).mul(al2);
        FloatVector a33 = FloatVector.fromArray(S, ot, o3 + 3 * L).mul(al3);
        for (int j = 0, vr = vc, pr = i; j < n; j++, vr += d, pr += w) {
            FloatVector p0 = FloatVector.fromArray(S, p, pr);
            FloatVector p1 = FloatVector.fromArray(S, p, pr + L);
            FloatVector p2 = FloatVector.fromArray(S, p, pr + 2 * L);
            FloatVector p3 = FloatVector.fromArray(S, p, pr + 3 * L);
            FloatVector b = FloatVector.broadcast(S, v[vr]);
            a00 = p0.fma(b, a00);
            a01 = p1.fma(b, a01);
            a02 = p2.fma(b, a02);
            a03 = p3.fma(b, a03);
            b = FloatVector.broadcast(S, v[vr + 1]);
            a10 = p0.fma(b, a10);
            a11 = p1.fma(b, a11);
            a12 = p2.fma(b, a12);
            a13 = p3.fma(b, a13);
            b = FloatVector.broadcast(S, v[vr + 2]);
            a20 = p0.fma(b, a20);
            a21 = p1.fma(b, a21);
            a22 = p2.fma(b, a22);
            a23 = p3.fma(b, a23);
            b = FloatVector.broadcast(S, v[vr + 3]);
            a30 = p0.fma(b, a30);
            a31 = p1.fma(b, a31);
            a32 = p2.fma(b, a32);
            a33 = p3.fma(b, a33);
        }
        a00.intoArray(ot, o);
        a01.intoArray(ot, o + L);
        a02.intoArray(ot, o + 2 * L);
        a03.intoArray(ot, o + 3 * L);
        a10.intoArray(ot, o1);
        a11.intoArray(ot, o1 + L);
        a12.intoArray(ot, o1 + 2 * L);
        a13.intoArray(ot, o1 + 3 * L);
        a20.intoArray(ot, o2);
        a21.intoArray(ot, o2 + L);
        a22.intoArray(ot, o2 + 2 * L);
        a23.intoArray(ot, o2 + 3 * L);
        a30.intoArray(ot, o3);
        a31.intoArray(ot, o3 + L);
        a32.intoArray(ot, o3 + 2 * L);
        a33.intoArray(ot, o3 + 3 * L);
    }

    private static void accumulate1x4(float[] p, int n, int w, int i, float[] v, int vc, int d, float[] ot, int o,
            float[] alpha) {
        FloatVector a0 = FloatVector.fromArray(S, ot, o).mul(FloatVector.fromArray(S, alpha, i));
        FloatVector a1 = FloatVector.fromArray(S, ot, o + L).mul(FloatVector.fromArray(S, alpha, i + L));
        FloatVector a2 = FloatVector.fromArray(S, ot, o + 2 * L).mul(FloatVector.fromArray(S, alpha, i + 2 * L));
        FloatVector a3 = FloatVector.fromArray(S, ot, o + 3 * L).mul(FloatVector.fromArray(S, alpha, i + 3 * L));
        for (int j = 0, vr = vc, pr = i; j < n; j++, vr += d, pr += w) {
            FloatVector b = FloatVector.broadcast(S, v[vr]);
            a0 = FloatVector.fromArray(S, p, pr).fma(b, a0);
            a1 = FloatVector.fromArray(S, p, pr + L).fma(b, a1);
            a2 = FloatVector.fromArray(S, p, pr + 2 * L).fma(b, a2);
            a3 = FloatVector.fromArray(S, p, pr + 3 * L).fma(b, a3);
        }
        a0.intoArray(ot, o);
        a1.intoArray(ot, o + L);
        a2.intoArray(ot, o + 2 * L);
        a3.intoArray(ot, o + 3 * L);
    }
}
