package tileattn.example;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.tensor.FloatTensor;

class LocalityExampleTest {

    private static final Shape3 VIDEO = new Shape3(6, 10, 10);

    @Test
    void deterministicFromTheSeed() {
        LocalityExample a = LocalityExample.generate(VIDEO, 5, 2, 3, 16, 7);
        LocalityExample b = LocalityExample.generate(VIDEO, 5, 2, 3, 16, 7);
        LocalityExample c = LocalityExample.generate(VIDEO, 5, 2, 3, 16, 8);
        assertArrayEquals(new int[]{2, 3, 605, 16}, a.q().shape());
        assertArrayEquals(a.q().data(), b.q().data());
        assertArrayEquals(a.k().data(), b.k().data());
        assertArrayEquals(a.v().data(), b.v().data());
        assertFalse(java.util.Arrays.equals(a.q().data(), c.q().data()));
    }

    /** Softmax mass a video query puts on keys within Chebyshev distance r (in tokens), averaged over queries. */
    private static double localMass(FloatTensor q, FloatTensor k, int head, int r, boolean shuffledKeys) {
        int s = VIDEO.volume(), d = q.dim(3);
        int[] keyPosition = new int[s];
        java.util.Random rnd = new java.util.Random(1);
        for (int i = 0; i < s; i++) {
            keyPosition[i] = i;
        }
        if (shuffledKeys) {
            for (int i = s - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1), tmp = keyPosition[i];
                keyPosition[i] = keyPosition[j];
                keyPosition[j] = tmp;
            }
        }
        double total = 0;
        int queries = 0;
        for (int qi = 0; qi < s; qi += 13) {
            double[] scores = new double[s];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < s; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) {
                    dot += q.data()[(head * s + qi) * d + c] * k.data()[(head * s + keyPosition[j]) * d + c];
                }
                scores[j] = dot / Math.sqrt(d);
                max = Math.max(max, scores[j]);
            }
            double z = 0, near = 0;
            for (int j = 0; j < s; j++) {
                double e = Math.exp(scores[j] - max);
                z += e;
                if (Math.abs(j / 100 - qi / 100) <= r && Math.abs(j / 10 % 10 - qi / 10 % 10) <= r
                        && Math.abs(j % 10 - qi % 10) <= r) {
                    near += e;
                }
            }
            total += near / z;
            queries++;
        }
        return total / queries;
    }

    @Test
    void attentionConcentratesOnNearbyTokens() {
        LocalityExample ex = LocalityExample.generate(VIDEO, 0, 1, 3, 32, 3);
        for (int head = 0; head < 3; head++) {
            double local = localMass(ex.q(), ex.k(), head, 3, false);
            double shuffled = localMass(ex.q(), ex.k(), head, 3, true);
            // A 7x7x7 neighbourhood holds at most 343 of the 600 keys, far fewer at the borders; with the key
            // positions shuffled the same neighbourhood gets roughly its share of the keys.
            assertTrue(local > 0.7, "head " + head + " puts only " + local + " of its attention nearby");
            assertTrue(shuffled < 0.4, "head " + head + " control with shuffled key positions: " + shuffled);
        }
        assertTrue(localMass(ex.q(), ex.k(), 0, 1, false) > localMass(ex.q(), ex.k(), 2, 1, false),
                "head 0 has the shortest correlation length and looks most locally");
    }
}
