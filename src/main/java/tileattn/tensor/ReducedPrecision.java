package tileattn.tensor;

/**
 * Bit-level conversions between fp32 and the two 16-bit float formats. Narrowing rounds to nearest, ties to
 * even; values too large for the target become infinity; NaN stays NaN (quiet) with its sign.
 */
public final class ReducedPrecision {

    private ReducedPrecision() {
    }

    /** fp32 → IEEE binary16 bits. The JDK's conversion already rounds to nearest even and keeps NaN a NaN. */
    public static short toF16(float value) {
        return Float.floatToFloat16(value);
    }

    public static float fromF16(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** fp32 → bfloat16 bits (the upper half of the fp32 pattern, rounded to nearest even). */
    public static short toBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            // Truncating could clear every mantissa bit a NaN has left and turn it into infinity; force quiet.
            return (short) ((bits >>> 16) | 0x0040);
        }
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7fff + lsb) >>> 16);
    }

    public static float fromBf16(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }
}
