package tileattn.api;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** Which attention to compute: dense, Sliding Tile Attention or Video Sparse Attention, with their settings. */
public sealed interface AttentionSpec permits AttentionSpec.Dense, AttentionSpec.Sta, AttentionSpec.Vsa {

    static Dense dense() {
        return new Dense();
    }

    /** Every query attends every key; token order does not matter. */
    record Dense() implements AttentionSpec {
    }

    /**
     * Sliding Tile Attention over a video (plus text tokens) laid out by {@code layout}. Either one window for all
     * heads ({@code sharedWindow}, a single-element list) or one window per head, in head order.
     */
    record Sta(TokenLayout layout, List<Window> windows, boolean sharedWindow) implements AttentionSpec {

        public Sta {
            Objects.requireNonNull(layout, "layout");
            windows = List.copyOf(windows);
            if (windows.isEmpty()) {
                throw new IllegalArgumentException("STA needs at least one window");
            }
            if (sharedWindow && windows.size() != 1) {
                throw new IllegalArgumentException("a shared STA window is a single window, got " + windows.size());
            }
        }

        /** The same window for every head. */
        public static Sta of(TokenLayout layout, Window window) {
            return new Sta(layout, List.of(window), true);
        }

        /** One window per head, in head order. */
        public static Sta perHead(TokenLayout layout, Window... windows) {
            return new Sta(layout, Arrays.asList(windows), false);
        }

        /** The window of every head, for tensors with {@code heads} heads. */
        public Window[] windowsFor(int heads) {
            if (sharedWindow) {
                Window[] all = new Window[heads];
                Arrays.fill(all, windows.getFirst());
                return all;
            }
            if (windows.size() != heads) {
                throw new IllegalArgumentException("STA spec gives " + windows.size() + " per-head windows but the "
                        + "tensors have " + heads + " heads");
            }
            return windows.toArray(Window[]::new);
        }
    }

    /**
     * Video Sparse Attention over a video of {@code grid} (no text tokens): each query tile keeps its
     * {@code topK} best KV tiles. {@code gate}, when not null, scales the coarse output and has the output's shape
     * (raster order, like the inputs).
     */
    record Vsa(TileGrid grid, int topK, FloatTensor gate) implements AttentionSpec {

        public Vsa {
            Objects.requireNonNull(grid, "grid");
            if (topK < 1 || topK > grid.tileCount()) {
                throw new IllegalArgumentException("VSA top-k must be in 1.." + grid.tileCount() + " (the number of "
                        + "tiles of " + grid + "), got " + topK);
            }
        }

        public static Vsa topK(TileGrid grid, int topK) {
            return new Vsa(grid, topK, null);
        }

        /** Keeps k = max(1, min(ceil((1 − sparsity) · tiles), tiles)) KV tiles per query tile. */
        public static Vsa sparsity(TileGrid grid, double sparsity) {
            return new Vsa(grid, topKForSparsity(grid.tileCount(), sparsity), null);
        }

        public static int topKForSparsity(int tiles, double sparsity) {
            if (!(sparsity >= 0 && sparsity <= 1)) {
                throw new IllegalArgumentException("VSA sparsity must be in [0, 1], got " + sparsity);
            }
            // Subtracting a tiny amount keeps e.g. (1 - 0.9) * 10 = 1.0000000000000002 from rounding up to 2.
            int k = (int) Math.ceil((1 - sparsity) * tiles - 1e-9);
            return Math.max(1, Math.min(k, tiles));
        }

        public Vsa withGate(FloatTensor gate) {
            return new Vsa(grid, topK, gate);
        }
    }
}
