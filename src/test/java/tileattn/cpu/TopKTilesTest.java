package tileattn.cpu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class TopKTilesTest {

    @Test
    void keepsTheLargestAndBreaksTiesTowardsTheLowerIndex() {
        float[] scores = {0.5f, 2f, -1f, 2f, 0.5f, 0.5f, -0f, 0f};
        assertArrayEquals(new int[]{1}, select(scores, 1));
        assertArrayEquals(new int[]{1, 3}, select(scores, 2));
        assertArrayEquals(new int[]{0, 1, 3}, select(scores, 3));
        assertArrayEquals(new int[]{0, 1, 3, 4, 5}, select(scores, 5));
        assertArrayEquals(new int[]{0, 1, 3, 4, 5, 7}, select(scores, 6), "+0 ranks above -0");
        assertArrayEquals(new int[]{0, 1, 2, 3, 4, 5, 6, 7}, select(scores, 8));
    }

    @Test
    void agreesWithRepeatedArgmaxOnRandomScoresWithManyTies() {
        Random rnd = new Random(4);
        for (int trial = 0; trial < 500; trial++) {
            int n = 1 + rnd.nextInt(trial < 450 ? 40 : 2000), k = 1 + rnd.nextInt(n);
            float[] scores = new float[n];
            for (int i = 0; i < n; i++) {
                scores[i] = rnd.nextInt(5) - 2.5f + (rnd.nextBoolean() ? 0 : (float) rnd.nextGaussian());
            }
            boolean[] taken = new boolean[n];
            for (int r = 0; r < k; r++) {
                int best = -1;
                for (int i = 0; i < n; i++) {
                    if (!taken[i] && (best < 0 || scores[i] > scores[best])) {
                        best = i;
                    }
                }
                taken[best] = true;
            }
            int[] expected = new int[k];
            for (int i = 0, c = 0; i < n; i++) {
                if (taken[i]) {
                    expected[c++] = i;
                }
            }
            assertArrayEquals(expected, select(scores, k));
        }
    }

    private static int[] select(float[] scores, int k) {
        int[] out = new int[k + 2];
        TopKTiles.select(scores, scores.length, k, new long[scores.length], out, 1);
        assertEquals(0, out[0], "writes only its slice");
        assertEquals(0, out[k + 1], "writes only its slice");
        return java.util.Arrays.copyOfRange(out, 1, k + 1);
    }
}
