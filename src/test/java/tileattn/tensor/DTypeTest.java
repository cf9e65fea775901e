package tileattn.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class DTypeTest {

    @Test
    void bf16RoundsHalfwayCasesToEven() {
        assertEquals((short) 0x3F80, DType.BF16.encodeHalf(Float.intBitsToFloat(0x3F808000)), "tie, kept bit even: down");
        assertEquals((short) 0x3F82, DType.BF16.encodeHalf(Float.intBitsToFloat(0x3F818000)), "tie, kept bit odd: up");
        assertEquals((short) 0x3F81, DType.BF16.encodeHalf(Float.intBitsToFloat(0x3F808001)), "above the tie: up");
        assertEquals((short) 0x8000, DType.BF16.encodeHalf(-0.0f));
        assertEquals((short) 0x7F80, DType.BF16.encodeHalf(Float.MAX_VALUE), "rounds past the largest bf16 to +Inf");
        assertEquals((short) 0xFF80, DType.BF16.encodeHalf(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(DType.BF16.decodeHalf(DType.BF16.encodeHalf(Float.intBitsToFloat(0x7F800001)))),
                "a NaN whose payload sits in the dropped bits stays NaN");
    }

    @Test
    void narrowingPicksTheNearestValueForRandomBitPatterns() {
        Random rnd = new Random(11);
        for (DType type : new DType[]{DType.BF16, DType.F16}) {
            for (int i = 0; i < 200_000; i++) {
                float x = i % 2 == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(40) - 20));
                if (Float.isNaN(x)) {
                    assertTrue(Float.isNaN(type.decodeHalf(type.encodeHalf(x))));
                    continue;
                }
                short bits = type.encodeHalf(x);
                assertNearestEven(type, x, bits);
            }
        }
    }

    /** Independent check: no other value of the type is closer to x, and a tie went to the even pattern. */
    private static void assertNearestEven(DType type, float x, short bits) {
        if (Float.isInfinite(x)) {
            assertEquals(x, type.decodeHalf(bits));
            return;
        }
        int magnitude = bits & 0x7FFF;
        int sign = bits & 0x8000;
        assertTrue(magnitude <= infinity(type), () -> type + ": finite " + x + " became NaN");
        double got = extendedValue(type, sign | magnitude);
        for (int delta = -1; delta <= 1; delta += 2) {
            int neighbour = magnitude + delta;
            if (neighbour < 0 || neighbour > infinity(type)) {
                continue;
            }
            double other = extendedValue(type, sign | neighbour);
            double dGot = Math.abs(got - x);
            double dOther = Math.abs(other - x);
            assertTrue(dGot <= dOther, () -> type + ": " + x + " became " + got + " but " + other + " is closer");
            if (dGot == dOther) {
                assertEquals(0, magnitude & 1, () -> type + ": tie at " + x + " must go to the even pattern");
            }
        }
    }

    private static int infinity(DType type) {
        return type == DType.BF16 ? 0x7F80 : 0x7C00;
    }

    /** A pattern's value, with infinity standing for max + 1 ulp: IEEE overflows exactly when that is nearest. */
    private static double extendedValue(DType type, int pattern) {
        int magnitude = pattern & 0x7FFF;
        double sign = (pattern & 0x8000) != 0 ? -1 : 1;
        if (magnitude == infinity(type)) {
            double max = type.decodeHalf((short) (magnitude - 1));
            double ulp = max - type.decodeHalf((short) (magnitude - 2));
            return sign * (max + ulp);
        }
        return sign * type.decodeHalf((short) magnitude);
    }

    @Test
    void widensExactly() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float bf = DType.BF16.decodeHalf((short) bits);
            if (!Float.isNaN(bf)) {
                assertEquals((short) bits, DType.BF16.encodeHalf(bf), "bf16 -> f32 -> bf16 is the identity");
            }
            float h = DType.F16.decodeHalf((short) bits);
            if (!Float.isNaN(h)) {
                assertEquals((short) bits, DType.F16.encodeHalf(h), "f16 -> f32 -> f16 is the identity");
            }
        }
    }
}
