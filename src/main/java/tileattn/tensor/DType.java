package tileattn.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Locale;

/**
 * Element types of tensors in files and on the device; values are always computed in fp32. Narrowing rounds to
 * nearest even, as the GPU's cvt.rn does, so host and device conversions give the same bits (NaN payloads aside).
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

    /** The safetensors dtype name, e.g. "BF16". */
    public String safetensorsName() {
        return name();
    }

    /** Parses a dtype name as written in safetensors headers or on the command line (case-insensitive). */
    public static DType parse(String name) {
        String upper = name.trim().toUpperCase(Locale.ROOT);
        for (DType d : values()) {
            if (d.name().equals(upper)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unsupported dtype '" + name + "' (supported: "
                + Arrays.toString(values()).replaceAll("[\\[\\]]", "") + ")");
    }

    /** The 16-bit pattern of {@code value} in this half-width type, rounded to nearest even. */
    public short encodeHalf(float value) {
        return switch (this) {
            case F16 -> ReducedPrecision.toF16(value);
            case BF16 -> ReducedPrecision.toBf16(value);
            case F32 -> throw new UnsupportedOperationException("F32 is not a 16-bit type");
        };
    }

    /** The exact fp32 value of a 16-bit pattern of this type. */
    public float decodeHalf(short bits) {
        return switch (this) {
            case F16 -> ReducedPrecision.fromF16(bits);
            case BF16 -> ReducedPrecision.fromBf16(bits);
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
}
