package tileattn.tensor;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class ReducedPrecisionTest {

    private static short bf16(int fp32Bits) {
        return ReducedPrecision.toBf16(Float.intBitsToFloat(fp32Bits));
    }

    private static void assertBits(int expected, short actual, String what) {
        assertEquals(expected, actual & 0xffff, () -> what + ": expected 0x" + Integer.toHexString(expected)
                + " got 0x" + Integer.toHexString(actual & 0xffff));
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertBits(0x3f80, bf16(0x3f800000), "1.0");
        assertBits(0x3f80, bf16(0x3f807fff), "just below half");
        assertBits(0x3f81, bf16(0x3f808001), "just above half");
        assertBits(0x3f80, bf16(0x3f808000), "tie, even neighbour below");
        assertBits(0x3f82, bf16(0x3f818000), "tie, even neighbour above");
        assertBits(0xbf82, bf16(0xbf818000), "negative tie");
        assertBits(0x8000, bf16(0x80000000), "-0");
        assertBits(0x0000, bf16(0x00000001), "smallest fp32 subnormal");
        assertBits(0x4049, ReducedPrecision.toBf16((float) Math.PI), "pi");
    }

    @Test
    void bf16InfinityAndNaN() {
        assertBits(0x7f80, bf16(0x7f800000), "+inf");
        assertBits(0xff80, bf16(0xff800000), "-inf");
        assertBits(0x7f80, bf16(0x7f7fffff), "max float rounds up to inf");
        assertBits(0x7f7f, bf16(0x7f7f7fff), "largest value that stays finite");
        assertBits(0x7fc0, bf16(0x7f800001), "NaN whose payload sits in the dropped bits stays NaN");
        assertBits(0xffc0, bf16(0xff800001), "negative NaN keeps its sign");
        assertBits(0x7fc0, bf16(0x7fc00000), "canonical NaN");
        assertTrue(Float.isNaN(ReducedPrecision.fromBf16((short) 0x7fc1)));
        assertEquals(Float.POSITIVE_INFINITY, ReducedPrecision.fromBf16((short) 0x7f80));
    }

    @Test
    void bf16Widening() {
        assertEquals(3.140625f, ReducedPrecision.fromBf16((short) 0x4049));
        assertEquals(-2.0f, ReducedPrecision.fromBf16((short) 0xc000));
        assertEquals(Float.intBitsToFloat(0x00010000), ReducedPrecision.fromBf16((short) 0x0001), "subnormal");
    }

    @Test
    void bf16NarrowingIsNearestForRandomValues() {
        Random rnd = new Random(3);
        for (int i = 0; i < 20000; i++) {
            float x = Float.intBitsToFloat(rnd.nextInt() & 0xbfffffff); // finite values, both signs
            short b = ReducedPrecision.toBf16(x);
            float r = ReducedPrecision.fromBf16(b);
            float down = Float.intBitsToFloat(Float.floatToRawIntBits(x) & 0xffff0000);
            float up = Float.intBitsToFloat((Float.floatToRawIntBits(x) & 0xffff0000) + 0x10000);
            double err = Math.abs((double) r - x);
            assertTrue(err <= Math.abs((double) down - x) && err <= Math.abs((double) up - x),
                    "bf16 of " + x + " is " + r + ", not the nearest of " + down + " and " + up);
        }
    }

    @Test
    void f16KnownPatterns() {
        assertBits(0x3c00, ReducedPrecision.toF16(1.0f), "1.0");
        assertBits(0xc000, ReducedPrecision.toF16(-2.0f), "-2");
        assertBits(0x7bff, ReducedPrecision.toF16(65504f), "max half");
        assertBits(0x7bff, ReducedPrecision.toF16(65519f), "below the midpoint to inf");
        assertBits(0x7c00, ReducedPrecision.toF16(65520f), "midpoint to inf rounds to inf");
        assertBits(0x0001, ReducedPrecision.toF16(0x1p-24f), "smallest subnormal");
        assertBits(0x0000, ReducedPrecision.toF16(0x1p-25f), "tie to zero (even)");
        assertBits(0x0002, ReducedPrecision.toF16(0x3p-25f), "tie between 1 and 2 ulps goes to 2");
        assertBits(0x3c00, ReducedPrecision.toF16(1f + 0x1p-11f), "tie after 1.0, even below");
        assertBits(0x3c02, ReducedPrecision.toF16(1f + 0x3p-11f), "tie after 1.0+ulp, even above");
        assertBits(0x7c00, ReducedPrecision.toF16(Float.POSITIVE_INFINITY), "+inf");
        assertBits(0xfc00, ReducedPrecision.toF16(Float.NEGATIVE_INFINITY), "-inf");
        assertBits(0x8000, ReducedPrecision.toF16(-0.0f), "-0");
        short nan = ReducedPrecision.toF16(Float.intBitsToFloat(0x7f800001));
        assertEquals(0x7c00, nan & 0x7c00, "NaN keeps an all-ones exponent");
        assertNotEquals(0, nan & 0x03ff, "NaN keeps a non-zero mantissa");
        assertEquals(0.333251953125f, ReducedPrecision.fromF16((short) 0x3555));
        assertEquals(0x1p-24f, ReducedPrecision.fromF16((short) 0x0001));
        assertTrue(Float.isNaN(ReducedPrecision.fromF16((short) 0x7e00)));
    }
}
