package tileattn.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Element types of device tensors, with the host-side conversions from and to fp32. Narrowing rounds to nearest
 * even, as the GPU's cvt.rn does, so host and device conversions give the same bits (NaN payloads aside).
 */
public enum DType {
    F32(4),
    F16(2),
    BF16(2);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    /** The 16-bit pattern of {@code value} in this half-width type, rounded to nearest even. */
    public short encodeHalf(float value) {
        return switch (this) {
            case F16 -> Float.floatToFloat16(value);
            case BF16 -> floatToBf16(value);
            case F32 -> throw new UnsupportedOperationException("F32 is not a 16-bit type");
        };
    }

    /** The exact fp32 value of a 16-bit pattern of this type. */
    public float decodeHalf(short bits) {
        return switch (this) {
            case F16 -> Float.float16ToFloat(bits);
            case BF16 -> Float.intBitsToFloat((bits & 0xFFFF) << 16);
            case F32 -> throw new UnsupportedOperationException("F32 is not a 16-bit type");
        };
    }

    /** Writes element {@code index} of a host segment holding this type. */
    public void store(MemorySegment segment, long index, float value) {
        if (this == F32) {
            segment.setAtIndex(ValueLayout.JAVA_FLOAT, index, value);
        } else {
            segment.setAtIndex(ValueLayout.JAVA_SHORT, index, encodeHalf(value));
        }
    }

    /** Reads element {@code index} of a host segment holding this type, as fp32. */
    public float load(MemorySegment segment, long index) {
        return this == F32 ? segment.getAtIndex(ValueLayout.JAVA_FLOAT, index)
                : decodeHalf(segment.getAtIndex(ValueLayout.JAVA_SHORT, index));
    }

    // bf16 is the top half of fp32; adding 0x7FFF plus the lowest kept bit rounds ties to even, and carries into
    // the exponent round up to infinity exactly as IEEE rounding does. NaN must not round (it could become Inf).
    private static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }
}
