package tileattn.cli;

/**
 * Safetensors {@code __metadata__} keys tileattn reads and writes, so a file can carry the video it belongs to:
 * {@code video} as "T,H,W" and {@code text_length} as a decimal integer.
 */
final class InputMetadata {

    static final String VIDEO = "video";
    static final String TEXT_LENGTH = "text_length";
    static final String METHOD = "method";

    private InputMetadata() {
    }
}
