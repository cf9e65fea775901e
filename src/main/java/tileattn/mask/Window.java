package tileattn.mask;

import tileattn.layout.Shape3;

/**
 * An STA window in tiles, K_t × K_h × K_w. Along a dimension the window is either odd and no larger than the
 * grid, or exactly the grid's extent (the whole dimension, even or odd), which is how published strategies such
 * as 5×6×10 on a 5×6×10 grid write full attention.
 */
public record Window(int t, int h, int w) {

    public Window {
        if (t < 1 || h < 1 || w < 1) {
            throw new IllegalArgumentException("window extents must be positive, got " + t + "x" + h + "x" + w);
        }
    }

    public static Window parse(String text) {
        Shape3 s = Shape3.parse(text);
        return new Window(s.t(), s.h(), s.w());
    }

    /** The window that covers the whole grid (dense attention). */
    public static Window full(Shape3 grid) {
        return new Window(grid.t(), grid.h(), grid.w());
    }

    public int get(int axis) {
        return switch (axis) {
            case 0 -> t;
            case 1 -> h;
            case 2 -> w;
            default -> throw new IndexOutOfBoundsException("axis " + axis);
        };
    }

    /** Throws IllegalArgumentException naming the offending dimension if this window does not fit the grid. */
    public void checkFits(Shape3 grid) {
        String[] names = {"T", "H", "W"};
        for (int a = 0; a < 3; a++) {
            int k = get(a), n = grid.get(a);
            if (k == n) {
                continue;
            }
            if (k > n) {
                throw new IllegalArgumentException("window " + this + " is larger than the tile grid " + grid
                        + " along " + names[a] + " (" + k + " > " + n + ")");
            }
            if (k % 2 == 0) {
                throw new IllegalArgumentException("window " + this + " has an even extent " + k + " along " + names[a]
                        + "; extents must be odd, or equal to the grid's extent " + n + " for the whole dimension");
            }
        }
    }

    /** First KV tile coordinate of the window of query tile coordinate {@code q} along an axis of extent n. */
    public static int windowStart(int q, int k, int n) {
        if (k >= n) {
            return 0;
        }
        int half = k / 2;
        int centre = Math.clamp(q, half, n - 1 - half);
        return centre - half;
    }

    /** Whether query tile coordinate q may attend to key tile coordinate kv along an axis (the literal rule). */
    public static boolean allows(int q, int kv, int k, int n) {
        if (k == n) {
            return true;
        }
        int half = k / 2;
        int centre = Math.clamp(q, half, n - 1 - half);
        return Math.abs(centre - kv) <= half;
    }

    /** Number of KV tiles a query tile reads (the window volume, capped at the grid). */
    public int tileVolume(Shape3 grid) {
        return Math.min(t, grid.t()) * Math.min(h, grid.h()) * Math.min(w, grid.w());
    }

    @Override
    public String toString() {
        return t + "x" + h + "x" + w;
    }
}
