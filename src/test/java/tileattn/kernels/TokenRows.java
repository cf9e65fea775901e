package tileattn.kernels;

import static org.junit.jupiter.api.Assertions.fail;

/** Test check of the attention kernels' token-row output against their head-plane output. */
final class TokenRows {

    private TokenRows() {
    }

    /** rows [B, S, heads·d] holds planes [B, heads, S, d] bit for bit. */
    static void assertSameAsPlanes(float[] planes, float[] rows, int batch, int heads, int seq, int d, String what) {
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int p = 0; p < seq; p++) {
                    for (int e = 0; e < d; e++) {
                        float want = planes[((b * heads + h) * seq + p) * d + e];
                        float got = rows[((b * seq + p) * heads + h) * d + e];
                        if (Float.floatToIntBits(want) != Float.floatToIntBits(got)) {
                            fail(what + ": token row (" + b + ", " + p + ") head " + h + " column " + e + " is " + got
                                    + ", the plane layout gave " + want);
                        }
                    }
                }
            }
        }
    }
}
