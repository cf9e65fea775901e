package tileattn.api;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import tileattn.cpu.DoubleTensor;
import tileattn.cpu.ReferenceGradients;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * The training API on raster-order tensors against the literal double reference gradients (which work in raster
 * order and test every query/key pair against the mask rule), and the tape's contract: validation of dOut, repeated
 * backward, no recomputed forward, inputs captured at forward time.
 */
class AttentionTrainingTest {

    private static final double TOLERANCE = 1e-5;

    private static FloatTensor random(Random rnd, int... shape) {
        FloatTensor t = FloatTensor.zeros(shape);
        for (int i = 0; i < t.size(); i++) {
            t.data()[i] = (float) rnd.nextGaussian();
        }
        return t;
    }

    private static double relL2(FloatTensor expected, FloatTensor actual) {
        assertArrayEquals(expected.shape(), actual.shape());
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.size(); i++) {
            double e = expected.data()[i], a = actual.data()[i];
            assertTrue(Float.isFinite(actual.data()[i]), "non-finite value at " + i);
            diff += (e - a) * (e - a);
            norm += e * e;
        }
        assertTrue(norm > 0, "reference is zero, the comparison would be empty");
        return Math.sqrt(diff / norm);
    }

    private static void assertClose(String what, DoubleTensor expected, FloatTensor actual) {
        double err = relL2(expected.toFloat(), actual);
        assertTrue(err < TOLERANCE, what + ": relative L2 error " + err + " >= " + TOLERANCE);
    }

    private static void assertGradients(String what, ReferenceGradients.Gradients expected, AttentionGradients actual) {
        assertClose(what + " dq", expected.dq(), actual.dq());
        assertClose(what + " dk", expected.dk(), actual.dk());
        assertClose(what + " dv", expected.dv(), actual.dv());
        if (expected.dgate() == null) {
            assertNull(actual.dgate(), what + ": no gate, no dgate");
        } else {
            assertClose(what + " dgate", expected.dgate(), actual.dgate());
        }
    }

    private static DoubleTensor d(FloatTensor t) {
        return DoubleTensor.of(t);
    }

    @Test
    void denseGradientsMatchTheReference() {
        Random rnd = new Random(61);
        int[] shape = {2, 3, 37, 9};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), dOut = random(rnd, shape);
        for (float scale : new float[]{(float) (1 / Math.sqrt(9)), 0.7f}) {
            AttentionTape tape = scale == 0.7f
                    ? Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.dense(), scale)
                    : Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.dense());
            assertClose("dense output, scale " + scale, ReferenceGradients.denseForward(d(q), d(k), d(v), scale).out(),
                    tape.output());
            assertFalse(tape.hasGate());
            assertGradients("dense, scale " + scale, ReferenceGradients.dense(d(q), d(k), d(v), d(dOut), scale),
                    tape.backward(dOut));
        }
    }

    @Test
    void staGradientsWithTextPerHeadWindowsAndPartialTilesMatchTheReference() {
        Random rnd = new Random(62);
        // Grid 4x3x5 with a partial last tile on every axis; the windows clamp at the edges (3 of 4 along T,
        // 3 of 5 along W), take whole dimensions (4 = N_t, 3 = N_h, 5 = N_w) and the smallest window.
        TokenLayout layout = TokenLayout.of(new Shape3(7, 5, 9), new Shape3(2, 2, 2), 5);
        assertEquals(new Shape3(4, 3, 5), layout.grid().tiles());
        int s = layout.sequenceLength();
        int[] shape = {1, 3, s, 8};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), dOut = random(rnd, shape);
        Window[] windows = {new Window(3, 1, 3), new Window(4, 3, 1), new Window(1, 1, 5)};
        float scale = (float) (1 / Math.sqrt(8));
        AttentionTape tape = Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.Sta.perHead(layout, windows));
        assertClose("STA output", ReferenceGradients.staForward(d(q), d(k), d(v), layout, windows, scale).out(),
                tape.output());
        assertGradients("per-head STA", ReferenceGradients.sta(d(q), d(k), d(v), d(dOut), layout, windows, scale),
                tape.backward(dOut));

        Window shared = new Window(3, 3, 3);
        AttentionGradients g = Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.Sta.of(layout, shared), 0.4f)
                .backward(dOut);
        assertGradients("shared STA window", ReferenceGradients.sta(d(q), d(k), d(v), d(dOut), layout,
                new Window[]{shared, shared, shared}, 0.4f), g);
    }

    @Test
    void vsaGradientsWithAndWithoutGateMatchTheReference() {
        Random rnd = new Random(63);
        TileGrid grid = new TileGrid(new Shape3(3, 6, 5), new Shape3(2, 4, 2)); // 2x2x3 tiles, partial on every axis
        int[] shape = {2, 2, grid.videoTokens(), 6};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), dOut = random(rnd, shape);
        FloatTensor gate = random(rnd, shape);
        float scale = (float) (1 / Math.sqrt(6));
        for (int topK : new int[]{1, 5}) {
            AttentionTape gated = Attention.cpu().forwardForTraining(q, k, v,
                    AttentionSpec.Vsa.topK(grid, topK).withGate(gate));
            assertTrue(gated.hasGate());
            assertClose("gated VSA output top-" + topK,
                    ReferenceGradients.vsaForward(d(q), d(k), d(v), d(gate), grid, topK, scale).out(), gated.output());
            assertGradients("gated VSA top-" + topK,
                    ReferenceGradients.vsa(d(q), d(k), d(v), d(gate), d(dOut), grid, topK, scale),
                    gated.backward(dOut));

            AttentionTape plain = Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.Vsa.topK(grid, topK));
            assertFalse(plain.hasGate());
            assertGradients("VSA top-" + topK + " without gate",
                    ReferenceGradients.vsa(d(q), d(k), d(v), null, d(dOut), grid, topK, scale), plain.backward(dOut));
        }
    }

    @Test
    void trainingOutputEqualsTheInferenceOutput() {
        Random rnd = new Random(64);
        TokenLayout layout = TokenLayout.of(new Shape3(3, 5, 4), new Shape3(2, 2, 3), 2);
        int[] shape = {1, 2, layout.sequenceLength(), 4};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape);
        AttentionSpec spec = AttentionSpec.Sta.of(layout, new Window(1, 1, 1));
        assertArrayEquals(Attention.cpu().attend(q, k, v, spec).data(),
                Attention.cpu().forwardForTraining(q, k, v, spec).output().data());
    }

    /** A backend that forwards to the CPU and counts what the facade asks of it. */
    private static final class CountingBackend implements AttentionBackend {
        final CpuBackend cpu = new CpuBackend();
        final AtomicInteger forwards = new AtomicInteger(), trainingForwards = new AtomicInteger();
        final AtomicInteger backwards = new AtomicInteger();

        final AtomicInteger closes = new AtomicInteger();

        public String name() {
            return "counting cpu";
        }

        public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
            forwards.incrementAndGet();
            return cpu.dense(q, k, v, scale);
        }

        public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout l, Window[] w, float scale) {
            forwards.incrementAndGet();
            return cpu.sta(q, k, v, l, w, scale);
        }

        public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor g, TileGrid grid, int topK,
                               float scale) {
            forwards.incrementAndGet();
            return cpu.vsa(q, k, v, g, grid, topK, scale);
        }

        public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
            return counted(cpu.denseForTraining(q, k, v, scale));
        }

        public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout l, Window[] w,
                                            float scale) {
            return counted(cpu.staForTraining(q, k, v, l, w, scale));
        }

        public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor g, TileGrid grid,
                                            int topK, float scale) {
            return counted(cpu.vsaForTraining(q, k, v, g, grid, topK, scale));
        }

        private TileOrderTape counted(TileOrderTape inner) {
            trainingForwards.incrementAndGet();
            return new TileOrderTape() {
                public FloatTensor out() {
                    return inner.out();
                }

                public AttentionGradients backward(FloatTensor dOut) {
                    backwards.incrementAndGet();
                    return inner.backward(dOut);
                }

                public void close() {
                    closes.incrementAndGet();
                    inner.close();
                }
            };
        }
    }

    @Test
    void backwardRunsTwiceWithTheSameResultAndNeverRecomputesTheForward() {
        Random rnd = new Random(65);
        TileGrid grid = new TileGrid(new Shape3(4, 5, 6), new Shape3(2, 2, 4));
        int[] shape = {1, 2, grid.videoTokens(), 5};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), dOut = random(rnd, shape);
        FloatTensor gate = random(rnd, shape);
        float[] dOutBefore = dOut.data().clone();
        CountingBackend backend = new CountingBackend();
        AttentionTape tape = new Attention(backend).forwardForTraining(q, k, v,
                AttentionSpec.Vsa.topK(grid, 3).withGate(gate));
        AttentionGradients first = tape.backward(dOut), second = tape.backward(dOut);
        assertEquals(0, backend.forwards.get(), "backward must not rerun the forward");
        assertEquals(1, backend.trainingForwards.get());
        assertEquals(2, backend.backwards.get());
        assertArrayEquals(dOutBefore, dOut.data(), "dOut is left as given");
        assertArrayEquals(first.dq().data(), second.dq().data());
        assertArrayEquals(first.dk().data(), second.dk().data());
        assertArrayEquals(first.dv().data(), second.dv().data());
        assertArrayEquals(first.dgate().data(), second.dgate().data());
        assertNotSame(first.dq(), second.dq(), "each call returns its own tensors");

        FloatTensor other = random(rnd, shape);
        assertFalse(Arrays.equals(first.dq().data(), tape.backward(other).dq().data()),
                "a different dOut gives different gradients, so the equality above is not vacuous");
    }

    @Test
    void closingTheTapeClosesTheBackendsTapeAndEndsItsBackwards() {
        Random rnd = new Random(67);
        int[] shape = {1, 2, 19, 4};
        FloatTensor q = random(rnd, shape), dOut = random(rnd, shape);
        CountingBackend backend = new CountingBackend();
        AttentionTape tape = new Attention(backend).forwardForTraining(q, q, q, AttentionSpec.dense());
        tape.backward(dOut);
        tape.close();
        assertEquals(1, backend.closes.get(), "close reaches the backend's tape (where the GPU frees its memory)");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> tape.backward(dOut));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertEquals(1, backend.backwards.get(), "a closed tape does not reach the backend's backward");
        assertArrayEquals(shape, tape.output().shape(), "the output stays readable");
    }

    @Test
    void theTapeKeepsTheInputsAsTheyWereAtTheForward() {
        Random rnd = new Random(66);
        int[] shape = {1, 2, 19, 4};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), dOut = random(rnd, shape);
        var expected = ReferenceGradients.dense(d(q), d(k), d(v), d(dOut), 0.5);
        AttentionTape tape = Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.dense(), 0.5f);
        for (FloatTensor t : new FloatTensor[]{q, k, v}) {
            Arrays.fill(t.data(), 3f);
        }
        assertGradients("dense after the caller overwrote q, k, v", expected, tape.backward(dOut));
    }

    @Test
    void badGradientOutputsAreRejectedNamingTheProblem() {
        Random rnd = new Random(67);
        TokenLayout layout = TokenLayout.of(new Shape3(2, 3, 4), new Shape3(1, 2, 2), 1);
        int[] shape = {1, 2, layout.sequenceLength(), 3};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape);
        AttentionTape tape = Attention.cpu().forwardForTraining(q, k, v,
                AttentionSpec.Sta.of(layout, new Window(1, 1, 1)));

        String none = assertThrows(IllegalArgumentException.class, () -> tape.backward(null)).getMessage();
        assertTrue(none.contains("dOut is null"), none);

        String wrong = assertThrows(IllegalArgumentException.class,
                () -> tape.backward(random(rnd, 1, 2, layout.sequenceLength() - 1, 3))).getMessage();
        assertTrue(wrong.contains("output's shape [1, 2, 25, 3]") && wrong.contains("got [1, 2, 24, 3]"), wrong);

        FloatTensor nan = random(rnd, shape);
        nan.data()[(layout.sequenceLength() + 4) * 3 + 2] = Float.NaN;
        String nanMsg = assertThrows(IllegalArgumentException.class, () -> tape.backward(nan)).getMessage();
        assertTrue(nanMsg.contains("dOut holds NaN at index [0, 1, 4, 2]"), nanMsg);

        FloatTensor inf = random(rnd, shape);
        inf.data()[7] = Float.NEGATIVE_INFINITY;
        String infMsg = assertThrows(IllegalArgumentException.class, () -> tape.backward(inf)).getMessage();
        assertTrue(infMsg.contains("dOut holds -Infinity at index [0, 0, 2, 1]"), infMsg);

        assertNotNull(tape.backward(random(rnd, shape)).dq(), "the tape still works after rejected calls");
    }

    @Test
    void trainingForwardValidatesLikeTheInferenceForward() {
        Random rnd = new Random(68);
        TileGrid grid = new TileGrid(new Shape3(2, 4, 4), new Shape3(2, 2, 2));
        int[] shape = {1, 1, grid.videoTokens(), 3};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape);
        FloatTensor badGate = random(rnd, 1, 1, grid.videoTokens(), 4);
        String gate = assertThrows(IllegalArgumentException.class, () -> Attention.cpu().forwardForTraining(q, k, v,
                AttentionSpec.Vsa.topK(grid, 2).withGate(badGate))).getMessage();
        assertTrue(gate.contains("gate must have the output's shape"), gate);
        k.data()[0] = Float.POSITIVE_INFINITY;
        String inf = assertThrows(IllegalArgumentException.class,
                () -> Attention.cpu().forwardForTraining(q, k, v, AttentionSpec.dense())).getMessage();
        assertTrue(inf.contains("k holds Infinity at index [0, 0, 0, 0]"), inf);
    }

    /**
     * A backend whose tape returns q as the output and dOut as every gradient: the facade must then hand back q
     * and dOut unchanged, so it moves dOut into tile order and every gradient back to raster order.
     */
    @Test
    void gradientsComeBackInRasterOrder() {
        Random rnd = new Random(69);
        TileGrid grid = new TileGrid(new Shape3(3, 5, 4), new Shape3(2, 2, 3));
        int s = grid.videoTokens();
        int[] shape = {1, 2, s, 3};
        FloatTensor q = random(rnd, shape), k = random(rnd, shape), v = random(rnd, shape), dOut = random(rnd, shape);
        FloatTensor[] seenDOut = new FloatTensor[1];
        AttentionBackend echo = new AttentionBackend() {
            public String name() {
                return "echo";
            }

            public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
                throw new UnsupportedOperationException("training only");
            }

            public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout l, Window[] w,
                                   float scale) {
                throw new UnsupportedOperationException("training only");
            }

            public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor g, TileGrid grid, int topK,
                                   float scale) {
                throw new UnsupportedOperationException("training only");
            }

            public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
                throw new UnsupportedOperationException("VSA only");
            }

            public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout l, Window[] w,
                                                float scale) {
                throw new UnsupportedOperationException("VSA only");
            }

            public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor g,
                                                TileGrid grid, int topK, float scale) {
                return new TileOrderTape() {
                    public FloatTensor out() {
                        return q;
                    }

                    public AttentionGradients backward(FloatTensor dOut) {
                        seenDOut[0] = dOut;
                        return new AttentionGradients(dOut, dOut, dOut, dOut);
                    }
                };
            }
        };
        AttentionTape tape = new Attention(echo).forwardForTraining(q, k, v,
                AttentionSpec.Vsa.topK(grid, 1).withGate(random(rnd, shape)));
        assertArrayEquals(q.data(), tape.output().data());
        AttentionGradients g = tape.backward(dOut);
        for (FloatTensor t : new FloatTensor[]{g.dq(), g.dk(), g.dv(), g.dgate()}) {
            assertArrayEquals(dOut.data(), t.data());
        }
        int[] toRaster = grid.tileOrderToRaster();
        for (int pos = 0; pos < s; pos++) {
            for (int c = 0; c < 3; c++) {
                assertEquals(dOut.data()[(s + toRaster[pos]) * 3 + c], seenDOut[0].data()[(s + pos) * 3 + c],
                        "tile-order row " + pos + " of head 1");
            }
        }
        assertNotEquals(0, java.util.stream.IntStream.range(0, s).filter(i -> toRaster[i] != i).count(),
                "this grid reorders tokens, so the check above is not vacuous");
    }
}
