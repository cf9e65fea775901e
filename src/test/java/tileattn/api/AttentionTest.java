package tileattn.api;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import tileattn.cpu.ReferenceAttention;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

class AttentionTest {

    private static FloatTensor random(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    private static void assertClose(FloatTensor expected, FloatTensor actual, double tol, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        for (int i = 0; i < expected.size(); i++) {
            double e = expected.data()[i], a = actual.data()[i];
            if (Math.abs(e - a) > tol * (1 + Math.abs(e))) {
                fail(what + ": element " + i + " expected " + e + " got " + a);
            }
        }
    }

    @Test
    void denseMatchesTheReference() {
        Random rnd = new Random(21);
        FloatTensor q = random(rnd, 2, 3, 37, 9), k = random(rnd, 2, 3, 37, 9), v = random(rnd, 2, 3, 37, 9);
        assertClose(ReferenceAttention.dense(q, k, v, 1 / Math.sqrt(9)), Attention.cpu().attend(q, k, v,
                AttentionSpec.dense()), 1e-5, "dense, default scale");
        assertClose(ReferenceAttention.dense(q, k, v, 0.7), Attention.cpu().attend(q, k, v, AttentionSpec.dense(), 0.7f),
                1e-5, "dense, scale 0.7");
    }

    @Test
    void staMatchesTheReferenceOnRasterTensors() {
        Random rnd = new Random(22);
        // Partial edge tiles on every axis, text tokens, and a different window per head incl. whole dimensions.
        TokenLayout layout = TokenLayout.of(new Shape3(5, 7, 9), new Shape3(2, 3, 4), 6);
        Shape3 n = layout.grid().tiles();
        assertEquals(new Shape3(3, 3, 3), n);
        int s = layout.sequenceLength();
        FloatTensor q = random(rnd, 1, 3, s, 8), k = random(rnd, 1, 3, s, 8), v = random(rnd, 1, 3, s, 8);
        Window[] windows = {new Window(1, 1, 1), new Window(3, 1, 3), new Window(1, 3, 1)};
        FloatTensor out = Attention.cpu().attend(q, k, v, AttentionSpec.Sta.perHead(layout, windows));
        assertClose(ReferenceAttention.sta(q, k, v, layout, windows, 1 / Math.sqrt(8)), out, 1e-5, "per-head STA");

        Window shared = new Window(1, 3, 1);
        FloatTensor sharedOut = Attention.cpu().attend(q, k, v, AttentionSpec.Sta.of(layout, shared), 0.5f);
        assertClose(ReferenceAttention.sta(q, k, v, layout, new Window[]{shared, shared, shared}, 0.5), sharedOut,
                1e-5, "shared STA window");
    }

    @Test
    void vsaMatchesTheReferenceWithAndWithoutGate() {
        Random rnd = new Random(23);
        TileGrid grid = new TileGrid(new Shape3(3, 6, 5), new Shape3(2, 4, 2)); // 2x2x3 tiles, partial
        int s = grid.videoTokens();
        FloatTensor q = random(rnd, 2, 2, s, 6), k = random(rnd, 2, 2, s, 6), v = random(rnd, 2, 2, s, 6);
        FloatTensor gate = random(rnd, 2, 2, s, 6);
        for (int topK : new int[]{1, 5, grid.tileCount()}) {
            assertClose(ReferenceAttention.vsa(q, k, v, null, grid, topK, 1 / Math.sqrt(6)).out(),
                    Attention.cpu().attend(q, k, v, AttentionSpec.Vsa.topK(grid, topK)), 1e-5, "VSA top-" + topK);
            assertClose(ReferenceAttention.vsa(q, k, v, gate, grid, topK, 1 / Math.sqrt(6)).out(),
                    Attention.cpu().attend(q, k, v, AttentionSpec.Vsa.topK(grid, topK).withGate(gate)), 1e-5,
                    "gated VSA top-" + topK);
        }
    }

    /** A backend that hands q back: the facade must then return q itself, so the two reorderings are inverse. */
    @Test
    void backendSeesTileOrderAndOutputComesBackInRasterOrder() {
        Random rnd = new Random(24);
        TokenLayout layout = TokenLayout.of(new Shape3(3, 5, 4), new Shape3(2, 2, 3), 2);
        int s = layout.sequenceLength(), d = 3;
        FloatTensor q = random(rnd, 1, 2, s, d), k = random(rnd, 1, 2, s, d), v = random(rnd, 1, 2, s, d);
        FloatTensor[] seen = new FloatTensor[1];
        AttentionBackend echo = new AttentionBackend() {
            public String name() {
                return "echo";
            }

            public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
                return q;
            }

            public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout l, Window[] w, float scale) {
                seen[0] = q;
                return q;
            }

            public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor g, TileGrid grid, int topK,
                                   float scale) {
                return q;
            }

            public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
                throw new UnsupportedOperationException("this test runs forward passes only");
            }

            public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout l, Window[] w,
                                                float scale) {
                throw new UnsupportedOperationException("this test runs forward passes only");
            }

            public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor g,
                                                TileGrid grid, int topK, float scale) {
                throw new UnsupportedOperationException("this test runs forward passes only");
            }
        };
        FloatTensor out = new Attention(echo).attend(q, k, v, AttentionSpec.Sta.of(layout, new Window(1, 1, 1)));
        assertArrayEquals(q.data(), out.data());
        int[] toRaster = layout.tileOrderToRaster();
        for (int head = 0; head < 2; head++) {
            for (int pos = 0; pos < s; pos++) {
                for (int c = 0; c < d; c++) {
                    assertEquals(q.data()[(head * s + toRaster[pos]) * d + c], seen[0].data()[(head * s + pos) * d + c],
                            "tile-order row " + pos + " of head " + head);
                }
            }
        }
        assertNotEquals(0, java.util.stream.IntStream.range(0, s).filter(i -> toRaster[i] != i).count(),
                "this layout reorders tokens, so the check above is not vacuous");
    }
}
