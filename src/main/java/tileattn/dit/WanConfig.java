package tileattn.dit;

import java.util.Locale;
import tileattn.layout.Shape3;

/**
 * The shape of a Wan-2.1 text-to-video transformer. {@link #wan13b()} is the published 1.3B model; {@link #tiny()}
 * has the same structure at a size tests run in milliseconds.
 *
 * @param dim hidden width (heads × head dimension)
 * @param ffnDim inner width of the tanh-GELU feed-forward
 * @param patch latent voxels per token along T, H, W (the patch embedding is a Conv3d with kernel = stride = patch)
 * @param textDim width of the text encoder's embeddings (umT5-XXL: 4096)
 * @param textLength text tokens the model attends; shorter contexts are zero-padded to it, as Wan pads prompts
 * @param freqDim width of the sinusoidal timestep embedding
 * @param eps epsilon of every LayerNorm and RMSNorm
 * @param ropeTheta base of the rotary frequencies
 */
public record WanConfig(String name, int dim, int layers, int heads, int ffnDim, int inChannels, int outChannels,
                        Shape3 patch, int textDim, int textLength, int freqDim, float eps, double ropeTheta) {

    /** Wan's flow-matching time runs over [0, 1000): the timestep fed to the model is 1000·σ. */
    public static final int TRAIN_TIMESTEPS = 1000;

    public WanConfig {
        if (dim < 1 || layers < 1 || heads < 1 || ffnDim < 1 || inChannels < 1 || outChannels < 1 || textDim < 1
                || textLength < 1 || freqDim < 2) {
            throw new IllegalArgumentException("model sizes must be positive: " + name);
        }
        if (dim % heads != 0) {
            throw new IllegalArgumentException("hidden width " + dim + " is not divisible by " + heads + " heads");
        }
        int headDim = dim / heads;
        // RoPE rotates pairs and gives each of H and W a third of them, so at least three pairs are needed.
        if (headDim % 2 != 0 || headDim < 6) {
            throw new IllegalArgumentException("head dimension " + headDim + " must be even and at least 6 for 3D RoPE");
        }
        if (freqDim % 2 != 0) {
            throw new IllegalArgumentException("timestep frequency width " + freqDim + " must be even");
        }
    }

    /** Wan-2.1 T2V 1.3B as published (diffusers config of Wan-AI/Wan2.1-T2V-1.3B-Diffusers). */
    public static WanConfig wan13b() {
        return new WanConfig("wan-1.3b", 1536, 30, 12, 8960, 16, 16, new Shape3(1, 2, 2), 4096, 512, 256, 1e-6f,
                10000.0);
    }

    /** The same architecture at test size: 2 blocks, 2 heads of 32, text width 32 over 16 tokens. */
    public static WanConfig tiny() {
        return new WanConfig("tiny", 64, 2, 2, 128, 16, 16, new Shape3(1, 2, 2), 32, 16, 256, 1e-6f, 10000.0);
    }

    /** "wan-1.3b" or "tiny" (case-insensitive). */
    public static WanConfig byName(String name) {
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "wan-1.3b", "wan2.1-1.3b", "wan-t2v-1.3b" -> wan13b();
            case "tiny" -> tiny();
            default -> throw new IllegalArgumentException("unknown model configuration '" + name
                    + "' (known: wan-1.3b, tiny)");
        };
    }

    public int headDim() {
        return dim / heads;
    }

    /** Latent values per token: channels × patch volume, the patch embedding's input width. */
    public int patchInputs() {
        return inChannels * patch.volume();
    }

    /** Values per token the head produces before unpatchifying. */
    public int patchOutputs() {
        return outChannels * patch.volume();
    }

    /**
     * Rotary pairs given to T, H and W. Wan splits the head's d/2 pairs as (p − 2⌊p/3⌋, ⌊p/3⌋, ⌊p/3⌋): for
     * d = 128 that is 22, 21 and 21 pairs (44, 42, 42 dimensions).
     */
    public int[] ropePairs() {
        int pairs = headDim() / 2;
        int hw = pairs / 3;
        return new int[]{pairs - 2 * hw, hw, hw};
    }

    /** The token grid of a latent video of T×H×W voxels; each extent must be a multiple of the patch's. */
    public Shape3 tokenGrid(Shape3 latent) {
        String[] axes = {"T", "H", "W"};
        for (int a = 0; a < 3; a++) {
            if (latent.get(a) % patch.get(a) != 0) {
                throw new IllegalArgumentException("latent " + latent + " is not divisible by the patch " + patch
                        + " along " + axes[a] + " (" + latent.get(a) + " % " + patch.get(a) + " != 0)");
            }
        }
        return new Shape3(latent.t() / patch.t(), latent.h() / patch.h(), latent.w() / patch.w());
    }

    /** Number of parameters, for memory estimates. */
    public long parameterCount() {
        long n = 0;
        for (int[] shape : WanParameters.shapes(this).values()) {
            long c = 1;
            for (int s : shape) {
                c *= s;
            }
            n += c;
        }
        return n;
    }

    @Override
    public String toString() {
        return name + " (hidden " + dim + ", " + layers + " blocks, " + heads + " heads of " + headDim() + ", FFN "
                + ffnDim + ", patch " + patch + ", text " + textLength + "×" + textDim + ")";
    }
}
