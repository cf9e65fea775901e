package tileattn.dit;

import java.util.Arrays;
import java.util.stream.IntStream;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.tensor.FloatTensor;

/**
 * The Wan-2.1 text-to-video transformer on the CPU in fp32. One forward maps a noisy latent [B, C, T, H, W], a
 * timestep per batch entry and prepared text ({@link #condition}) to the predicted flow velocity of the same shape.
 *
 * <p>Per block, with the block's modulation m = scale_shift_table + time_proj(SiLU(t_emb)) split into
 * (shift, scale, gate) for attention and for the feed-forward:
 * <pre>
 *   x += gate₁ · SelfAttn(LN(x)·(1 + scale₁) + shift₁)         q, k RMS-normalised over the hidden width, then RoPE
 *   x += CrossAttn(LN_affine(x), text)                            q, k RMS-normalised, no RoPE
 *   x += gate₂ · FFN(LN(x)·(1 + scale₂) + shift₂)                 Linear → GELU(tanh) → Linear
 * </pre>
 * and the head computes proj_out(LN(x)·(1 + scale) + shift) with (shift, scale) = its table + t_emb. The video
 * tokens are put into the self-attention's tile order once, when the patches are embedded; the RoPE tables are
 * built for that order and the output is unpatchified from it.
 */
public final class WanModel implements WanTransformer<TextCondition> {

    private static final int SHIFT_1 = 0, SCALE_1 = 1, GATE_1 = 2, SHIFT_2 = 3, SCALE_2 = 4, GATE_2 = 5;

    private final WanWeights w;
    private final WanConfig c;

    public WanModel(WanWeights weights) {
        this.w = weights;
        this.c = weights.config();
    }

    @Override
    public WanConfig config() {
        return c;
    }

    /**
     * Projects text embeddings [B, L, textDim] (L ≤ the configuration's text length; shorter ones are zero-padded
     * to it, as Wan pads every prompt) and computes each block's cross-attention keys and values.
     */
    @Override
    public TextCondition condition(FloatTensor context) {
        int batch = context.dim(0), l = c.textLength();
        float[] padded = paddedContext(c, context);
        float[] h = w.text1.apply(padded, batch * l);
        Activations.geluTanh(h);
        float[] text = w.text2.apply(h, batch * l);
        float[][] keys = new float[c.layers()][], values = new float[c.layers()][];
        for (int i = 0; i < c.layers(); i++) {
            BlockWeights bw = w.blocks[i];
            keys[i] = bw.crossK().apply(text, batch * l);
            Norms.rmsNorm(keys[i], batch * l, c.dim(), c.eps(), bw.crossNormK());
            values[i] = bw.crossV().apply(text, batch * l);
        }
        return new TextCondition(batch, l, keys, values);
    }

    /**
     * Checks text embeddings [B, L, textDim] (1 ≤ L ≤ the text length) and zero-pads each prompt to the text length,
     * as Wan pads every prompt: [B · textLength, textDim] row-major.
     */
    static float[] paddedContext(WanConfig c, FloatTensor context) {
        if (context.rank() != 3 || context.dim(2) != c.textDim()) {
            throw new IllegalArgumentException("text embeddings must be [batch, tokens, " + c.textDim() + "] for "
                    + c.name() + ", got " + context.shapeString());
        }
        int batch = context.dim(0), given = context.dim(1), l = c.textLength();
        if (given > l || given < 1 || batch < 1) {
            throw new IllegalArgumentException("text embeddings " + context.shapeString() + " must hold 1.." + l
                    + " tokens per prompt (" + c.name() + " attends " + l + " text tokens)");
        }
        float[] padded = new float[batch * l * c.textDim()];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(context.data(), b * given * c.textDim(), padded, b * l * c.textDim(), given * c.textDim());
        }
        return padded;
    }

    /**
     * The time signals of a batch of timesteps: {temb [B, dim], timeProj [B, 6·dim]} (the head modulates with temb,
     * the blocks with timeProj).
     */
    static float[][] timeSignals(WanWeights w, float[] timesteps) {
        return timeSignals(w.config(), w.time1, w.time2, w.timeProj, timesteps);
    }

    static float[][] timeSignals(WanConfig c, Linear time1, Linear time2, Linear timeProj, float[] timesteps) {
        int batch = timesteps.length;
        float[] tIn = new float[batch * c.freqDim()];
        for (int b = 0; b < batch; b++) {
            System.arraycopy(TimestepEmbedding.sinusoid(timesteps[b], c.freqDim()), 0, tIn, b * c.freqDim(), c.freqDim());
        }
        float[] temb = time2.apply(Activations.silu(time1.apply(tIn, batch)), batch);
        return new float[][]{temb, timeProj.apply(Activations.silu(temb), batch)};
    }

    /** One forward pass; returns the velocity [B, outChannels, T, H, W]. */
    @Override
    public FloatTensor forward(FloatTensor latent, float[] timesteps, TextCondition text, SelfAttention attention) {
        if (latent.rank() != 5 || latent.dim(1) != c.inChannels()) {
            throw new IllegalArgumentException("latent must be [batch, " + c.inChannels() + ", T, H, W], got "
                    + latent.shapeString());
        }
        int batch = latent.dim(0);
        if (timesteps.length != batch || text.batch != batch) {
            throw new IllegalArgumentException("batch of " + batch + " latents needs as many timesteps and text "
                    + "conditions, got " + timesteps.length + " and " + text.batch);
        }
        Shape3 grid = c.tokenGrid(new Shape3(latent.dim(2), latent.dim(3), latent.dim(4)));
        TileGrid tiles = new TileGrid(grid, attention.tile());
        int[] rasterOfPosition = tiles.tileOrderToRaster();
        int s = rasterOfPosition.length, rows = batch * s, dim = c.dim();

        float[] x = w.patchEmbedding.apply(Patchify.patches(latent, c.patch(), grid, rasterOfPosition), rows);
        RopeTable rope = new RopeTable(c, grid, rasterOfPosition);

        float[][] time = timeSignals(w, timesteps);
        float[] temb = time[0], timeProj = time[1];

        for (int layer = 0; layer < c.layers(); layer++) {
            block(layer, x, batch, s, timeProj, text, rope, attention, tiles);
        }

        float[] head = Arrays.copyOf(x, x.length);
        Norms.layerNorm(head, rows, dim, c.eps(), null, null);
        float[] headMod = Modulation.perBatch(w.headModulation, Modulation.repeatChunks(temb, batch, 2), batch);
        Modulation.modulate(head, batch, s, dim, headMod, 2, 0, 1);
        float[] out = w.projOut.apply(head, rows);
        return Patchify.unpatchify(out, batch, c.outChannels(), c.patch(), grid, rasterOfPosition);
    }

    private void block(int layer, float[] x, int batch, int s, float[] timeProj, TextCondition text, RopeTable rope,
                       SelfAttention attention, TileGrid tiles) {
        BlockWeights bw = w.blocks[layer];
        int dim = c.dim(), rows = batch * s;
        float[] mod = Modulation.perBatch(bw.modulation(), timeProj, batch);

        float[] h = Arrays.copyOf(x, x.length);
        Norms.layerNorm(h, rows, dim, c.eps(), null, null);
        Modulation.modulate(h, batch, s, dim, mod, 6, SHIFT_1, SCALE_1);
        float[] q = bw.selfQ().apply(h, rows);
        Norms.rmsNorm(q, rows, dim, c.eps(), bw.selfNormQ());
        float[] k = bw.selfK().apply(h, rows);
        Norms.rmsNorm(k, rows, dim, c.eps(), bw.selfNormK());
        float[] v = bw.selfV().apply(h, rows);
        FloatTensor o = CpuSelfAttention.attend(attention, toHeads(q, batch, s, rope), toHeads(k, batch, s, rope),
                toHeads(v, batch, s, null), layer, tiles);
        Modulation.addGated(x, bw.selfOut().apply(fromHeads(o), rows), batch, s, dim, mod, 6, GATE_1);

        h = Arrays.copyOf(x, x.length);
        Norms.layerNorm(h, rows, dim, c.eps(), bw.crossNormWeight(), bw.crossNormBias());
        q = bw.crossQ().apply(h, rows);
        Norms.rmsNorm(q, rows, dim, c.eps(), bw.crossNormQ());
        float[] cross = CrossAttention.attend(q, batch, s, text.keys[layer], text.values[layer], text.length, c.heads(),
                c.headDim());
        Modulation.add(x, bw.crossOut().apply(cross, rows));

        h = Arrays.copyOf(x, x.length);
        Norms.layerNorm(h, rows, dim, c.eps(), null, null);
        Modulation.modulate(h, batch, s, dim, mod, 6, SHIFT_2, SCALE_2);
        float[] u = bw.ffnUp().apply(h, rows);
        Activations.geluTanh(u);
        Modulation.addGated(x, bw.ffnDown().apply(u, rows), batch, s, dim, mod, 6, GATE_2);
    }

    /** [B·S, heads·d] → [B, heads, S, d], rotating each head vector by RoPE when a table is given. */
    private FloatTensor toHeads(float[] x, int batch, int s, RopeTable rope) {
        int heads = c.heads(), d = c.headDim(), dim = c.dim();
        FloatTensor t = FloatTensor.zeros(batch, heads, s, d);
        float[] dst = t.data();
        IntStream.range(0, batch * s).parallel().forEach(row -> {
            int b = row / s, p = row % s;
            for (int h = 0; h < heads; h++) {
                int src = row * dim + h * d, out = ((b * heads + h) * s + p) * d;
                if (rope == null) {
                    System.arraycopy(x, src, dst, out, d);
                } else {
                    rope.rotate(x, src, dst, out, p);
                }
            }
        });
        return t;
    }

    /** [B, heads, S, d] → [B·S, heads·d]. */
    private float[] fromHeads(FloatTensor t) {
        int batch = t.dim(0), heads = t.dim(1), s = t.dim(2), d = t.dim(3), dim = heads * d;
        float[] src = t.data(), x = new float[batch * s * dim];
        IntStream.range(0, batch * s).parallel().forEach(row -> {
            int b = row / s, p = row % s;
            for (int h = 0; h < heads; h++) {
                System.arraycopy(src, ((b * heads + h) * s + p) * d, x, row * dim + h * d, d);
            }
        });
        return x;
    }
}
