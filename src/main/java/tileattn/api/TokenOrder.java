package tileattn.api;

import tileattn.tensor.FloatTensor;

/** Moves the token rows of [B, heads, S, d] tensors between raster order and tile order. */
final class TokenOrder {

    private TokenOrder() {
    }

    /** Row s of every (batch, head) of {@code x} becomes row {@code perm[s]} of the result. */
    static FloatTensor permute(FloatTensor x, int[] perm) {
        int bh = x.dim(0) * x.dim(1), s = x.dim(2), d = x.dim(3);
        float[] in = x.data();
        float[] out = new float[in.length];
        for (int block = 0; block < bh; block++) {
            int base = block * s * d;
            for (int row = 0; row < s; row++) {
                System.arraycopy(in, base + row * d, out, base + perm[row] * d, d);
            }
        }
        return new FloatTensor(x.shape(), out);
    }
}
