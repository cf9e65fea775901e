package tileattn.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class VectorOpsTest {

    private static final VectorOps PANAMA = VectorOpsProvider.panamaOrScalar();
    private static final VectorOps SCALAR = new ScalarVectorOps();

    @Test
    void testsRunWithTheVectorApi() {
        assertTrue(VectorOpsProvider.vectorApiAvailable(), "surefire adds jdk.incubator.vector");
        assertTrue(PANAMA.name().startsWith("vector-api"), PANAMA.name());
        assertTrue(PANAMA.lanes() > 1);
    }

    @Test
    void scalarPathIsChosenWithoutTheModuleAndNeverLoadsIt() throws Exception {
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        String cp = System.getProperty("java.class.path");
        Process p = new ProcessBuilder(java, "-Xlog:class+load=info", "-cp", cp, ProviderProbe.class.getName())
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), output);
        assertFalse(output.contains("jdk.incubator.vector"), "a class of the incubator module was loaded");
        String last = output.lines().filter(line -> line.startsWith("probe: ")).findFirst().orElseThrow();
        String[] parts = last.split(" ");
        assertEquals("scalar", parts[1], last);
        assertTrue(Double.parseDouble(parts[2]) < 1e-5, last);
    }

    @Test
    void dotAxpyScaleMatchDouble() {
        Random rnd = new Random(5);
        for (int trial = 0; trial < 200; trial++) {
            int n = rnd.nextInt(80), offA = rnd.nextInt(5), offB = rnd.nextInt(5);
            float[] a = random(rnd, n + offA), b = random(rnd, n + offB);
            double expect = 0;
            for (int i = 0; i < n; i++) {
                expect += (double) a[offA + i] * b[offB + i];
            }
            for (VectorOps ops : new VectorOps[]{PANAMA, SCALAR}) {
                assertEquals(expect, ops.dot(a, offA, b, offB, n), 1e-4 * (1 + Math.sqrt(n)), ops.name() + " dot n=" + n);
                float alpha = (float) rnd.nextGaussian();
                float[] y = b.clone();
                ops.axpy(alpha, a, offA, y, offB, n);
                for (int i = 0; i < b.length; i++) {
                    float want = i < offB ? b[i] : b[i] + alpha * a[offA + i - offB];
                    assertEquals(want, y[i], 1e-5f, ops.name() + " axpy");
                }
                ops.scale(y, offB, n, 0.5f);
                for (int i = offB; i < b.length; i++) {
                    assertEquals(0.5f * (b[i] + alpha * a[offA + i - offB]), y[i], 1e-5f, ops.name() + " scale");
                }
            }
        }
    }

    @Test
    void blockKernelsMatchDouble() {
        Random rnd = new Random(9);
        int lanes = PANAMA.lanes();
        for (int trial = 0; trial < 150; trial++) {
            int n = 1 + rnd.nextInt(70), d = 1 + rnd.nextInt(70), w = lanes * (1 + rnd.nextInt(6));
            int kOff = rnd.nextInt(7), qOff = rnd.nextInt(7), rowOff = rnd.nextInt(3);
            float[] k = random(rnd, kOff + n * d), qt = random(rnd, qOff + d * w), v = random(rnd, kOff + n * d);
            float[] m0 = new float[rowOff + w], l0 = new float[rowOff + w], ot0 = random(rnd, qOff + d * w);
            for (int i = 0; i < w; i++) {
                m0[rowOff + i] = trial % 3 == 0 ? Float.NEGATIVE_INFINITY : (float) rnd.nextGaussian();
                l0[rowOff + i] = trial % 3 == 0 ? 0f : 1 + rnd.nextFloat();
            }
            double[] scores = new double[n * w];
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < w; i++) {
                    for (int dd = 0; dd < d; dd++) {
                        scores[j * w + i] += (double) k[kOff + j * d + dd] * qt[qOff + dd * w + i];
                    }
                }
            }
            for (VectorOps ops : new VectorOps[]{PANAMA, SCALAR}) {
                String what = ops.name() + " n=" + n + " d=" + d + " w=" + w;
                float[] st = new float[n * w];
                ops.scores(k, kOff, n, d, qt, qOff, w, st);
                for (int x = 0; x < st.length; x++) {
                    assertEquals(scores[x], st[x], 1e-4 * (1 + Math.sqrt(d)), what + " scores");
                }
                float[] m = m0.clone(), l = l0.clone(), alpha = new float[w], before = st.clone();
                ops.softmaxStep(st, n, w, m, l, rowOff, alpha);
                for (int i = 0; i < w; i++) {
                    float max = m[rowOff + i];
                    for (int j = 0; j < n; j++) {
                        double e = Math.exp(before[j * w + i] - max);
                        assertEquals(e, st[j * w + i], 1e-6 * e + 1e-37, what + " exp of " + (before[j * w + i] - max));
                    }
                    double a = Math.exp(m0[rowOff + i] - max);
                    assertEquals(a, alpha[i], 1e-6 * a + 1e-37, what + " alpha");
                }
                double[] p = new double[n * w];
                for (int i = 0; i < w; i++) {
                    double max = m0[rowOff + i];
                    for (int j = 0; j < n; j++) {
                        max = Math.max(max, scores[j * w + i]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) {
                        p[j * w + i] = Math.exp(scores[j * w + i] - max);
                        sum += p[j * w + i];
                        assertEquals(p[j * w + i], st[j * w + i], 1e-4, what + " exp");
                    }
                    double a = Math.exp(m0[rowOff + i] - max);
                    assertEquals(max, m[rowOff + i], 1e-4, what + " max");
                    assertEquals(l0[rowOff + i] * a + sum, l[rowOff + i], 1e-4 * (1 + sum), what + " sum");
                }
                float[] ot = ot0.clone();
                ops.accumulate(st, n, w, v, kOff, d, ot, qOff, alpha);
                for (int dd = 0; dd < d; dd++) {
                    for (int i = 0; i < w; i++) {
                        double want = ot0[qOff + dd * w + i] * (double) alpha[i];
                        for (int j = 0; j < n; j++) {
                            want += (double) st[j * w + i] * v[kOff + j * d + dd];
                        }
                        assertEquals(want, ot[qOff + dd * w + i], 1e-4 * (1 + Math.sqrt(n)), what + " accumulate");
                    }
                }
            }
        }
    }

    @Test
    void softmaxExponentialIsAccurateOverItsWholeRange() {
        int w = 2 * PANAMA.lanes(), n = 400;
        float[] st = new float[n * w];
        for (int x = 0; x < st.length; x++) {
            st[x] = -x * 110f / st.length;
        }
        st[5 * w + 1] = Float.NaN;
        for (VectorOps ops : new VectorOps[]{PANAMA, SCALAR}) {
            float[] e = st.clone(), m = new float[w], l = new float[w], alpha = new float[w];
            ops.softmaxStep(e, n, w, m, l, 0, alpha);
            for (int x = 0; x < st.length; x++) {
                if (x % w == 1) {
                    assertTrue(Float.isNaN(e[x]), ops.name() + " NaN reaches every score of its row");
                } else if (st[x] >= -87f) {
                    double want = Math.exp(st[x]);
                    assertEquals(want, e[x], 1e-6 * want, ops.name() + " exp(" + st[x] + ")");
                } else {
                    double bound = Math.max(Math.exp(st[x]) * (1 + 1e-6), 1.2e-38);
                    assertTrue(e[x] >= 0 && e[x] <= bound, ops.name() + " exp(" + st[x] + ") = " + e[x]);
                }
            }
            assertTrue(Float.isNaN(l[1]) && !Float.isNaN(l[0]));
        }
    }

    private static float[] random(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
