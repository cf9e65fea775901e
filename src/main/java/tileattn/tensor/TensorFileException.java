package tileattn.tensor;

import java.nio.file.Path;

/** A tensor file that cannot be read or written as asked; the message always names the file. */
public final class TensorFileException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public TensorFileException(Path file, String problem) {
        super(file + ": " + problem);
    }

    public TensorFileException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
