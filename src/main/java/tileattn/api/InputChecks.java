package tileattn.api;

import java.util.Arrays;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** The checks {@link Attention} runs before any computation; each failure names the tensor or setting at fault. */
final class InputChecks {

    private InputChecks() {
    }

    static void shapes(FloatTensor q, FloatTensor k, FloatTensor v) {
        notNull(q, "q");
        notNull(k, "k");
        notNull(v, "v");
        if (q.rank() != 4) {
            throw new IllegalArgumentException("q must have rank 4 [batch, heads, S, d], got shape " + q.shapeString());
        }
        if (!q.sameShape(k) || !q.sameShape(v)) {
            throw new IllegalArgumentException("q, k and v must have the same shape [batch, heads, S, d], got q "
                    + q.shapeString() + ", k " + k.shapeString() + ", v " + v.shapeString());
        }
        String[] names = {"batch", "heads", "S", "d"};
        for (int a = 0; a < 4; a++) {
            if (q.dim(a) < 1) {
                throw new IllegalArgumentException(names[a] + " must be > 0, got shape " + q.shapeString());
            }
        }
    }

    private static void notNull(FloatTensor t, String name) {
        if (t == null) {
            throw new IllegalArgumentException(name + " is null");
        }
    }

    static void scale(float scale) {
        if (!Float.isFinite(scale) || scale <= 0) {
            throw new IllegalArgumentException("scale must be a finite positive number, got " + scale);
        }
    }

    static void sequence(int s, TokenLayout layout) {
        if (s != layout.sequenceLength()) {
            throw new IllegalArgumentException("sequence length S=" + s + " does not match video "
                    + layout.grid().video() + " (" + layout.videoTokens() + " tokens) + " + layout.textLength()
                    + " text tokens = " + layout.sequenceLength());
        }
    }

    static void windows(Window[] windows, TileGrid grid) {
        for (int head = 0; head < windows.length; head++) {
            try {
                windows[head].checkFits(grid.tiles());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("head " + head + ": " + e.getMessage(), e);
            }
        }
    }

    static void vsaVideo(int s, TileGrid grid) {
        if (s != grid.videoTokens()) {
            throw new IllegalArgumentException("sequence length S=" + s + " does not match video " + grid.video()
                    + " (" + grid.videoTokens() + " tokens); VSA has no text tokens");
        }
    }

    static void gate(FloatTensor gate, FloatTensor q) {
        if (gate != null && !gate.sameShape(q)) {
            throw new IllegalArgumentException("gate must have the output's shape " + q.shapeString() + ", got "
                    + gate.shapeString());
        }
    }

    /** NaN or infinity anywhere is rejected: attention would spread it silently over whole rows of the output. */
    static void finite(FloatTensor t, String name) {
        float[] data = t.data();
        for (int i = 0; i < data.length; i++) {
            if (!Float.isFinite(data[i])) {
                throw new IllegalArgumentException(name + " holds " + data[i] + " at index "
                        + Arrays.toString(unravel(i, t.shape())) + " (raster order); inputs must be finite");
            }
        }
    }

    private static int[] unravel(int flat, int[] shape) {
        int[] index = new int[shape.length];
        for (int a = shape.length - 1; a >= 0; a--) {
            index[a] = flat % shape[a];
            flat /= shape[a];
        }
        return index;
    }
}
