package tileattn.dit;

import tileattn.layout.Shape3;
import tileattn.mask.Window;

/**
 * Which self-attention one forward pass of the model runs. Every variant names a tile: the forward puts the video
 * tokens into that tile order once, after the patch embedding, and every layer attends in it (dense attention
 * does not care about the order). Self-attention in Wan has no text tokens; text enters by cross-attention.
 */
public sealed interface SelfAttention permits SelfAttention.Dense, SelfAttention.Sta, SelfAttention.Vsa {

    /** The tile of the token order, in tokens (after patching). */
    Shape3 tile();

    /** A short description for logs and metadata, e.g. "sta 3x3x3 tiles of 6x8x8". */
    String describe();

    record Dense(Shape3 tile) implements SelfAttention {

        /** Dense attention in raster order. */
        public Dense() {
            this(new Shape3(1, 1, 1));
        }

        @Override
        public String describe() {
            return "dense";
        }
    }

    /**
     * Sliding Tile Attention with the windows {@code windows} gives for {@code step}, layer by layer.
     *
     * @param summary how to describe the windows in logs, e.g. "3x3x3" or "per-layer windows from FILE"
     */
    record Sta(Shape3 tile, WindowSchedule windows, int step, String summary) implements SelfAttention {

        public static Sta uniform(Shape3 tile, Window window, int heads) {
            return new Sta(tile, WindowSchedule.uniform(window, heads), 0, window.toString());
        }

        public Sta atStep(int newStep) {
            return new Sta(tile, windows, newStep, summary);
        }

        @Override
        public String describe() {
            return "sta " + summary + " tiles of " + tile;
        }
    }

    /**
     * Video Sparse Attention pooling over {@code tile}: each query tile keeps {@code topK} KV tiles, or, when topK
     * is 0, as many as {@code sparsity} leaves: k = max(1, min(⌈(1 − s)·tiles⌉, tiles)). Wan's VSA gate is a
     * zero-initialised projection absent from the published checkpoints, so the coarse branch is gated by 0 and
     * the output is the fine attention over the selected tiles.
     */
    record Vsa(Shape3 tile, int topK, double sparsity) implements SelfAttention {

        public Vsa {
            if (topK < 0) {
                throw new IllegalArgumentException("VSA top-k must be >= 1, got " + topK);
            }
            if (topK == 0 && !(sparsity >= 0 && sparsity <= 1)) {
                throw new IllegalArgumentException("VSA sparsity must be in [0, 1], got " + sparsity);
            }
        }

        public static Vsa keepTopK(Shape3 tile, int topK) {
            if (topK < 1) {
                throw new IllegalArgumentException("VSA top-k must be >= 1, got " + topK);
            }
            return new Vsa(tile, topK, Double.NaN);
        }

        public static Vsa ofSparsity(Shape3 tile, double sparsity) {
            return new Vsa(tile, 0, sparsity);
        }

        /** KV tiles kept per query tile on a grid of {@code tiles} tiles. */
        public int keep(int tiles) {
            if (topK > 0) {
                if (topK > tiles) {
                    throw new IllegalArgumentException("VSA top-k " + topK + " exceeds the " + tiles + " tiles of the video");
                }
                return topK;
            }
            // The small subtraction keeps e.g. (1 − 0.9)·10 = 1.0000000000000002 from rounding up to 2.
            int k = (int) Math.ceil((1 - sparsity) * tiles - 1e-9);
            return Math.max(1, Math.min(k, tiles));
        }

        @Override
        public String describe() {
            return "vsa " + (topK > 0 ? "top-" + topK : "sparsity " + sparsity) + " tiles of " + tile;
        }
    }
}
