package tileattn.tensor;

import java.util.Arrays;
import java.util.Locale;

/** Element types tileattn reads and writes in safetensors files; values are always computed in fp32. */
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
}
