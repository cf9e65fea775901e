package tileattn.dit;

import java.nio.file.Path;
import tileattn.tensor.FloatTensor;
import tileattn.tensor.SafetensorsFile;
import tileattn.tensor.TensorFileException;

/**
 * The text-encoder outputs a sampling run is conditioned on. File layout (safetensors, any of F32/F16/BF16):
 * <ul>
 *   <li>{@code context}: [N, L, textDim] or [L, textDim], one row of L ≤ text-length tokens per prompt (umT5-XXL's
 *       last hidden states for Wan, textDim 4096, cut at the prompt's real length or zero-padded);</li>
 *   <li>{@code context_null} (optional): [N or 1, L', textDim] or [L', textDim], the negative prompt's embeddings
 *       for the unconditional branch of classifier-free guidance; required when the guidance scale is not 1.</li>
 * </ul>
 *
 * @param contextNull null when the file has none
 */
public record TextEmbeddings(FloatTensor context, FloatTensor contextNull) {

    public static final String CONTEXT = "context";
    public static final String CONTEXT_NULL = "context_null";

    public int prompts() {
        return context.dim(0);
    }

    public static TextEmbeddings read(Path file, WanConfig config) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            if (!f.contains(CONTEXT)) {
                throw new TensorFileException(file, "no tensor named '" + CONTEXT + "' (text embeddings [N, L, "
                        + config.textDim() + "]); the file holds " + String.join(", ", f.names()));
            }
            FloatTensor context = batched(file, CONTEXT, f.read(CONTEXT), config);
            FloatTensor contextNull = f.contains(CONTEXT_NULL) ? batched(file, CONTEXT_NULL, f.read(CONTEXT_NULL), config)
                    : null;
            if (contextNull != null && contextNull.dim(0) != 1 && contextNull.dim(0) != context.dim(0)) {
                throw new TensorFileException(file, "'" + CONTEXT_NULL + "' holds " + contextNull.dim(0)
                        + " prompts; expected 1 or as many as '" + CONTEXT + "' (" + context.dim(0) + ")");
            }
            return new TextEmbeddings(context, contextNull);
        }
    }

    private static FloatTensor batched(Path file, String name, FloatTensor t, WanConfig config) {
        if (t.rank() == 2) {
            t = new FloatTensor(new int[]{1, t.dim(0), t.dim(1)}, t.data());
        }
        if (t.rank() != 3 || t.dim(2) != config.textDim()) {
            throw new TensorFileException(file, "'" + name + "' has shape " + t.shapeString() + "; expected [N, L, "
                    + config.textDim() + "] for " + config.name());
        }
        if (t.dim(0) < 1 || t.dim(1) < 1 || t.dim(1) > config.textLength()) {
            throw new TensorFileException(file, "'" + name + "' has shape " + t.shapeString() + "; each prompt must "
                    + "hold 1.." + config.textLength() + " tokens for " + config.name());
        }
        return t;
    }

    /** Standard-normal embeddings of {@code tokens} tokens for one prompt and its negative prompt. */
    public static TextEmbeddings random(WanConfig config, int tokens, long seed) {
        if (tokens < 1 || tokens > config.textLength()) {
            throw new IllegalArgumentException("text tokens must be 1.." + config.textLength() + " for "
                    + config.name() + ", got " + tokens);
        }
        return new TextEmbeddings(Noise.gaussian(seed, 1, tokens, config.textDim()),
                Noise.gaussian(seed + 1, 1, tokens, config.textDim()));
    }
}
