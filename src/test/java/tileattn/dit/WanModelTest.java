package tileattn.dit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** The tiny model's forward: determinism, agreement between attentions that must agree, batching, errors. */
class WanModelTest {

    private static final WanConfig TINY = WanConfig.tiny();
    /** 3×6×10 voxels → 3×3×5 tokens; tiles of 2×2×2 give a 2×2×3 grid with partial tiles on every axis. */
    private static final Shape3 TILE = new Shape3(2, 2, 2);
    private static final Shape3 TILES = new Shape3(2, 2, 3);

    private static WanModel model;
    private static FloatTensor latent;
    private static FloatTensor context;
    private static float[] timesteps;

    @BeforeAll
    static void setUp() {
        model = new WanModel(RandomWeights.create(TINY, 7));
        Random rnd = new Random(8);
        latent = DitPiecesTest.gaussian(rnd, 2, 16, 3, 6, 10);
        context = DitPiecesTest.gaussian(rnd, 2, 5, TINY.textDim());
        timesteps = new float[]{900f, 120f};
    }

    private static FloatTensor run(SelfAttention attention) {
        return model.forward(latent, timesteps, model.condition(context), attention);
    }

    @Test
    void forwardIsDeterministicAndFinite() {
        FloatTensor a = run(new SelfAttention.Dense());
        FloatTensor b = run(new SelfAttention.Dense());
        assertArrayEquals(new int[]{2, 16, 3, 6, 10}, a.shape());
        assertArrayEquals(a.data(), b.data());
        double sq = 0;
        for (float v : a.data()) {
            assertTrue(Float.isFinite(v));
            sq += v * v;
        }
        double rms = Math.sqrt(sq / a.size());
        assertTrue(rms > 0.05 && rms < 20, "velocity rms " + rms);
    }

    @Test
    void tokenOrderDoesNotChangeDenseAttention() {
        FloatTensor raster = run(new SelfAttention.Dense());
        FloatTensor tiled = run(new SelfAttention.Dense(TILE));
        assertTrue(PeerAgreementTest.relativeL2(tiled, raster) < 1e-6);
    }

    @Test
    void staWithTheWholeGridAsWindowEqualsDense() {
        FloatTensor dense = run(new SelfAttention.Dense(TILE));
        FloatTensor sta = run(SelfAttention.Sta.uniform(TILE, Window.full(TILES), TINY.heads()));
        assertTrue(PeerAgreementTest.relativeL2(sta, dense) < 1e-6);
    }

    @Test
    void smallerWindowsAndFewerTilesChangeTheOutput() {
        FloatTensor dense = run(new SelfAttention.Dense(TILE));
        FloatTensor sta = run(SelfAttention.Sta.uniform(TILE, new Window(1, 1, 1), TINY.heads()));
        FloatTensor vsa = run(SelfAttention.Vsa.keepTopK(TILE, 2));
        FloatTensor vsaAll = run(SelfAttention.Vsa.keepTopK(TILE, TILES.volume()));
        assertTrue(PeerAgreementTest.relativeL2(sta, dense) > 1e-3);
        assertTrue(PeerAgreementTest.relativeL2(vsa, dense) > 1e-3);
        assertTrue(PeerAgreementTest.relativeL2(vsaAll, dense) < 1e-6);
    }

    @Test
    void windowsAreAskedForPerLayerAndStep() {
        List<String> asked = new ArrayList<>();
        Window[][] perLayer = {{new Window(1, 1, 1), Window.full(TILES)}, {new Window(1, 1, 3), new Window(2, 1, 1)}};
        WindowSchedule fixed = WindowSchedule.perLayer(perLayer);
        WindowSchedule logged = (step, layer) -> {
            asked.add(step + ":" + layer);
            return fixed.windows(step, layer);
        };
        FloatTensor mixed = run(new SelfAttention.Sta(TILE, logged, 4, "per layer"));
        assertEquals(List.of("4:0", "4:1"), asked);
        // Head 1 of layer 0 is dense; the result lies strictly between the all-small and the all-dense windows.
        FloatTensor small = run(SelfAttention.Sta.uniform(TILE, new Window(1, 1, 1), TINY.heads()));
        assertTrue(PeerAgreementTest.relativeL2(mixed, small) > 1e-4);
    }

    @Test
    void batchEntriesAreIndependent() {
        FloatTensor both = run(new SelfAttention.Dense());
        int per = both.size() / 2;
        for (int b = 0; b < 2; b++) {
            FloatTensor oneLatent = slice(latent, b), oneContext = slice(context, b);
            FloatTensor one = model.forward(oneLatent, new float[]{timesteps[b]}, model.condition(oneContext),
                    new SelfAttention.Dense());
            float[] expected = java.util.Arrays.copyOfRange(both.data(), b * per, (b + 1) * per);
            assertArrayEquals(expected, one.data(), 1e-5f, "batch entry " + b);
        }
    }

    @Test
    void badInputsAreNamed() {
        TextCondition text = model.condition(context);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> model.forward(FloatTensor.zeros(2, 4, 3, 6, 10), timesteps, text, new SelfAttention.Dense()));
        assertTrue(e.getMessage().contains("[batch, 16, T, H, W]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> model.forward(FloatTensor.zeros(2, 16, 3, 5, 10), timesteps, text, new SelfAttention.Dense()));
        assertTrue(e.getMessage().contains("along H"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> model.forward(latent, new float[]{1f}, text, new SelfAttention.Dense()));
        assertTrue(e.getMessage().contains("timesteps"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> model.condition(FloatTensor.zeros(1, 3, 31)));
        assertTrue(e.getMessage().contains("[batch, tokens, 32]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> model.condition(FloatTensor.zeros(1, 17, 32)));
        assertTrue(e.getMessage().contains("1..16"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> model.forward(latent, timesteps, text,
                new SelfAttention.Sta(TILE, (step, layer) -> new Window[]{new Window(1, 1, 1)}, 0, "one")));
        assertTrue(e.getMessage().contains("layer 0: expected 2 windows"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> model.forward(latent, timesteps, text,
                new SelfAttention.Sta(TILE, (step, layer) -> layer == 1
                        ? new Window[]{new Window(1, 1, 1), new Window(1, 1, 2)}
                        : new Window[]{new Window(1, 1, 1), new Window(1, 1, 1)}, 3, "bad")));
        assertTrue(e.getMessage().contains("step 3, layer 1, head 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> model.forward(latent, timesteps, text, SelfAttention.Vsa.keepTopK(TILE, 13)));
        assertTrue(e.getMessage().contains("exceeds the 12 tiles"), e.getMessage());
    }

    @Test
    void vsaSparsityKeepsTheDocumentedTileCount() {
        TileGrid grid = new TileGrid(new Shape3(21, 30, 52), new Shape3(4, 4, 4));
        assertEquals(6 * 8 * 13, grid.tileCount());
        // 624 tiles at 87.5% sparsity: ceil(0.125 · 624) = 78.
        assertEquals(78, SelfAttention.Vsa.ofSparsity(new Shape3(4, 4, 4), 0.875).keep(grid.tileCount()));
        assertEquals(1, SelfAttention.Vsa.ofSparsity(TILE, 1.0).keep(12));
        assertEquals(12, SelfAttention.Vsa.ofSparsity(TILE, 0.0).keep(12));
        assertThrows(IllegalArgumentException.class, () -> SelfAttention.Vsa.ofSparsity(TILE, 1.5));
    }

    private static FloatTensor slice(FloatTensor t, int b) {
        int[] shape = t.shape();
        int per = t.size() / shape[0];
        shape[0] = 1;
        return new FloatTensor(shape, java.util.Arrays.copyOfRange(t.data(), b * per, (b + 1) * per));
    }
}
