package tileattn.api;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

class AttentionValidationTest {

    private static final Attention ATTENTION = Attention.cpu();
    private static final TokenLayout LAYOUT = TokenLayout.of(new Shape3(4, 6, 6), new Shape3(2, 2, 2), 3); // grid 2x3x3
    private static final int S = LAYOUT.sequenceLength();
    private static final TileGrid VSA_GRID = new TileGrid(new Shape3(4, 6, 6), new Shape3(2, 3, 3)); // 8 tiles

    private static FloatTensor random(int... shape) {
        Random rnd = new Random(shape.length * 31L + shape[shape.length - 1]);
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    private static void assertRejected(Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
        }
    }

    @Test
    void shapes() {
        FloatTensor q = random(1, 2, S, 4);
        assertRejected(() -> ATTENTION.attend(random(2, S, 4), random(2, S, 4), random(2, S, 4), AttentionSpec.dense()),
                "rank 4", "[2, " + S + ", 4]");
        assertRejected(() -> ATTENTION.attend(q, random(1, 2, S, 5), q, AttentionSpec.dense()), "same shape",
                "k [1, 2, " + S + ", 5]");
        assertRejected(() -> ATTENTION.attend(q, q, random(1, 3, S, 4), AttentionSpec.dense()), "v [1, 3, ");
        FloatTensor empty = FloatTensor.zeros(1, 2, S, 0);
        assertRejected(() -> ATTENTION.attend(empty, empty, empty, AttentionSpec.dense()), "d must be > 0");
        assertRejected(() -> ATTENTION.attend(null, q, q, AttentionSpec.dense()), "q is null");
        assertRejected(() -> ATTENTION.attend(q, q, q, null), "spec is null");
    }

    @Test
    void sequenceLength() {
        FloatTensor q = random(1, 2, S - 1, 4);
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.Sta.of(LAYOUT, new Window(1, 1, 1))),
                "S=" + (S - 1), "4x6x6 (144 tokens) + 3 text tokens = " + S);
        FloatTensor withText = random(1, 2, 147, 4);
        assertRejected(() -> ATTENTION.attend(withText, withText, withText, AttentionSpec.Vsa.topK(VSA_GRID, 2)),
                "S=147", "no text tokens");
    }

    @Test
    void windowsNameTheHead() {
        FloatTensor q = random(1, 3, S, 4);
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.Sta.perHead(LAYOUT, new Window(1, 1, 1),
                new Window(1, 2, 1), new Window(1, 1, 1))), "head 1", "even", "along H");
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.Sta.perHead(LAYOUT, new Window(1, 1, 1),
                new Window(1, 1, 1), new Window(1, 1, 5))), "head 2", "larger", "along W");
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.Sta.of(LAYOUT, new Window(3, 1, 1))),
                "head 0", "larger");
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.Sta.perHead(LAYOUT, new Window(1, 1, 1),
                new Window(1, 1, 1))), "2 per-head windows", "3 heads");
        // The whole dimension is allowed even when even: 2 tiles along T.
        assertDoesNotThrow(() -> ATTENTION.attend(q, q, q, AttentionSpec.Sta.of(LAYOUT, new Window(2, 3, 1))));
    }

    @Test
    void topK() {
        assertRejected(() -> AttentionSpec.Vsa.topK(VSA_GRID, 0), "1..8", "got 0");
        assertRejected(() -> AttentionSpec.Vsa.topK(VSA_GRID, 9), "1..8", "got 9");
        assertRejected(() -> AttentionSpec.Vsa.sparsity(VSA_GRID, 1.5), "[0, 1]");
        assertRejected(() -> AttentionSpec.Vsa.sparsity(VSA_GRID, Double.NaN), "[0, 1]");
        assertEquals(8, AttentionSpec.Vsa.sparsity(VSA_GRID, 0).topK());
        assertEquals(1, AttentionSpec.Vsa.sparsity(VSA_GRID, 1).topK());
        assertEquals(1, AttentionSpec.Vsa.topKForSparsity(10, 0.9), "(1-0.9)*10 is 1, not 2 by rounding error");
        assertEquals(4, AttentionSpec.Vsa.topKForSparsity(7, 0.5), "ceil(3.5)");
        assertEquals(1, AttentionSpec.Vsa.topKForSparsity(8, 0.875));
        assertEquals(2, AttentionSpec.Vsa.topKForSparsity(8, 0.8));
        assertEquals(1, AttentionSpec.Vsa.topKForSparsity(8, 0.99));
    }

    @Test
    void gateShape() {
        FloatTensor q = random(1, 2, 144, 4);
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.Vsa.topK(VSA_GRID, 2)
                .withGate(random(1, 2, 144, 3))), "gate", "[1, 2, 144, 4]", "[1, 2, 144, 3]");
    }

    @Test
    void nonFiniteInputsAreRejectedWithTheirIndex() {
        FloatTensor q = random(1, 2, S, 4);
        FloatTensor k = random(1, 2, S, 4);
        k.data()[(S + 5) * 4 + 2] = Float.NaN; // head 1, token 5, channel 2
        assertRejected(() -> ATTENTION.attend(q, k, q, AttentionSpec.dense()), "k holds NaN", "[0, 1, 5, 2]");
        FloatTensor v = random(1, 2, S, 4);
        v.data()[7] = Float.NEGATIVE_INFINITY;
        assertRejected(() -> ATTENTION.attend(q, q, v, AttentionSpec.Sta.of(LAYOUT, new Window(1, 1, 1))),
                "v holds -Infinity", "[0, 0, 1, 3]");
        FloatTensor vq = random(1, 2, 144, 4);
        FloatTensor gate = random(1, 2, 144, 4);
        gate.data()[gate.size() - 1] = Float.POSITIVE_INFINITY;
        assertRejected(() -> ATTENTION.attend(vq, vq, vq, AttentionSpec.Vsa.topK(VSA_GRID, 1).withGate(gate)),
                "gate holds Infinity", "[0, 1, 143, 3]");
    }

    @Test
    void scale() {
        FloatTensor q = random(1, 1, 5, 4);
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.dense(), Float.NaN), "scale");
        assertRejected(() -> ATTENTION.attend(q, q, q, AttentionSpec.dense(), 0f), "scale");
    }

    @Test
    void specsRejectMalformedSettings() {
        assertRejected(() -> new AttentionSpec.Sta(LAYOUT, java.util.List.of(), false), "at least one window");
        assertRejected(() -> new AttentionSpec.Sta(LAYOUT, java.util.List.of(new Window(1, 1, 1), new Window(1, 1, 1)),
                true), "single window");
    }
}
