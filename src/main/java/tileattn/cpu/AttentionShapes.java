package tileattn.cpu;

import tileattn.tensor.FloatTensor;

/** Argument checks shared by the CPU attention entry points; each failure names the offending input. */
final class AttentionShapes {

    private AttentionShapes() {
    }

    /** q, k and v must be [B, heads, S, d] with equal shapes and positive extents. */
    static void checkQkv(FloatTensor q, FloatTensor k, FloatTensor v) {
        if (q == null || k == null || v == null) {
            throw new IllegalArgumentException("q, k and v are required, got " + (q == null ? "no q" : k == null ? "no k" : "no v"));
        }
        if (q.rank() != 4) {
            throw new IllegalArgumentException("q must be [B, heads, S, d] but has shape " + q.shapeString());
        }
        if (!k.sameShape(q)) {
            throw new IllegalArgumentException("q has shape " + q.shapeString() + " but k has " + k.shapeString());
        }
        if (!v.sameShape(q)) {
            throw new IllegalArgumentException("q has shape " + q.shapeString() + " but v has " + v.shapeString());
        }
        for (int a = 0; a < 4; a++) {
            if (q.dim(a) == 0) {
                throw new IllegalArgumentException("q has an empty extent in shape " + q.shapeString());
            }
        }
    }

    static void checkScale(float scale) {
        if (!Float.isFinite(scale)) {
            throw new IllegalArgumentException("scale must be finite, got " + scale);
        }
    }
}
