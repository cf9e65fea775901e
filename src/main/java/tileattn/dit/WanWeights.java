package tileattn.dit;

import java.util.LinkedHashMap;
import java.util.Map;
import tileattn.tensor.FloatTensor;

/**
 * All parameters of a Wan transformer in fp32, bound by their diffusers names (see {@link WanParameters}).
 * Made from a checkpoint ({@link WanCheckpoint}) or from seeded random values ({@link RandomWeights}).
 */
public final class WanWeights {

    private final WanConfig config;
    final Linear patchEmbedding;
    final Linear time1;
    final Linear time2;
    final Linear timeProj;
    final Linear text1;
    final Linear text2;
    final BlockWeights[] blocks;
    /** The head's {@code scale_shift_table}, 2 × dim: shift then scale. */
    final float[] headModulation;
    final Linear projOut;

    private WanWeights(WanConfig config, Linear patchEmbedding, Linear time1, Linear time2, Linear timeProj,
                       Linear text1, Linear text2, BlockWeights[] blocks, float[] headModulation, Linear projOut) {
        this.config = config;
        this.patchEmbedding = patchEmbedding;
        this.time1 = time1;
        this.time2 = time2;
        this.timeProj = timeProj;
        this.text1 = text1;
        this.text2 = text2;
        this.blocks = blocks;
        this.headModulation = headModulation;
        this.projOut = projOut;
    }

    public WanConfig config() {
        return config;
    }

    /** Binds every parameter of {@code config}, asking {@code source} for each by name and shape in model order. */
    public static WanWeights from(WanConfig config, ParameterSource source) {
        Map<String, int[]> shapes = WanParameters.shapes(config);
        Binder p = new Binder(shapes, source);
        Linear patch = p.linear(WanParameters.PATCH_EMBEDDING);
        Linear time1 = p.linear(WanParameters.TIME_1);
        Linear time2 = p.linear(WanParameters.TIME_2);
        Linear timeProj = p.linear(WanParameters.TIME_PROJ);
        Linear text1 = p.linear(WanParameters.TEXT_1);
        Linear text2 = p.linear(WanParameters.TEXT_2);
        BlockWeights[] blocks = new BlockWeights[config.layers()];
        for (int i = 0; i < blocks.length; i++) {
            String b = WanParameters.block(i);
            blocks[i] = new BlockWeights(p.values(b + "scale_shift_table"),
                    p.linear(b + "attn1.to_q"), p.linear(b + "attn1.to_k"), p.linear(b + "attn1.to_v"),
                    p.linear(b + "attn1.to_out.0"), p.values(b + "attn1.norm_q.weight"), p.values(b + "attn1.norm_k.weight"),
                    p.values(b + "norm2.weight"), p.values(b + "norm2.bias"),
                    p.linear(b + "attn2.to_q"), p.linear(b + "attn2.to_k"), p.linear(b + "attn2.to_v"),
                    p.linear(b + "attn2.to_out.0"), p.values(b + "attn2.norm_q.weight"), p.values(b + "attn2.norm_k.weight"),
                    p.linear(b + "ffn.net.0.proj"), p.linear(b + "ffn.net.2"));
        }
        float[] headModulation = p.values(WanParameters.HEAD_MODULATION);
        Linear projOut = p.linear(WanParameters.PROJ_OUT);
        return new WanWeights(config, patch, time1, time2, timeProj, text1, text2, blocks, headModulation, projOut);
    }

    /** Every parameter under its diffusers name and PyTorch shape, in model order (for writing checkpoints). */
    public Map<String, FloatTensor> tensors() {
        Map<String, int[]> shapes = WanParameters.shapes(config);
        Map<String, FloatTensor> m = new LinkedHashMap<>();
        Emitter e = new Emitter(shapes, m);
        e.linear(WanParameters.PATCH_EMBEDDING, patchEmbedding);
        e.linear(WanParameters.TIME_1, time1);
        e.linear(WanParameters.TIME_2, time2);
        e.linear(WanParameters.TIME_PROJ, timeProj);
        e.linear(WanParameters.TEXT_1, text1);
        e.linear(WanParameters.TEXT_2, text2);
        for (int i = 0; i < blocks.length; i++) {
            String b = WanParameters.block(i);
            BlockWeights w = blocks[i];
            e.values(b + "scale_shift_table", w.modulation());
            e.linear(b + "attn1.to_q", w.selfQ());
            e.linear(b + "attn1.to_k", w.selfK());
            e.linear(b + "attn1.to_v", w.selfV());
            e.linear(b + "attn1.to_out.0", w.selfOut());
            e.values(b + "attn1.norm_q.weight", w.selfNormQ());
            e.values(b + "attn1.norm_k.weight", w.selfNormK());
            e.linear(b + "attn2.to_q", w.crossQ());
            e.linear(b + "attn2.to_k", w.crossK());
            e.linear(b + "attn2.to_v", w.crossV());
            e.linear(b + "attn2.to_out.0", w.crossOut());
            e.values(b + "attn2.norm_q.weight", w.crossNormQ());
            e.values(b + "attn2.norm_k.weight", w.crossNormK());
            e.values(b + "norm2.weight", w.crossNormWeight());
            e.values(b + "norm2.bias", w.crossNormBias());
            e.linear(b + "ffn.net.0.proj", w.ffnUp());
            e.linear(b + "ffn.net.2", w.ffnDown());
        }
        e.values(WanParameters.HEAD_MODULATION, headModulation);
        e.linear(WanParameters.PROJ_OUT, projOut);
        if (!m.keySet().equals(shapes.keySet())) {
            throw new IllegalStateException("parameter list out of step with WanParameters");
        }
        return m;
    }

    /** Asks the source for each parameter with the shape the configuration gives it. */
    private record Binder(Map<String, int[]> shapes, ParameterSource source) {

        FloatTensor tensor(String name) {
            int[] shape = shapes.get(name);
            if (shape == null) {
                throw new IllegalStateException("'" + name + "' is not a parameter of WanParameters");
            }
            FloatTensor t = source.get(name, shape);
            if (!java.util.Arrays.equals(t.shape(), shape)) {
                throw new IllegalArgumentException("parameter '" + name + "' has shape " + t.shapeString()
                        + ", expected " + java.util.Arrays.toString(shape));
            }
            return t;
        }

        float[] values(String name) {
            return tensor(name).data();
        }

        Linear linear(String prefix) {
            return Linear.fromPyTorch(tensor(prefix + ".weight"), tensor(prefix + ".bias"));
        }
    }

    private record Emitter(Map<String, int[]> shapes, Map<String, FloatTensor> out) {

        void values(String name, float[] data) {
            out.put(name, new FloatTensor(shapes.get(name), data.clone()));
        }

        void linear(String prefix, Linear layer) {
            out.put(prefix + ".weight", new FloatTensor(shapes.get(prefix + ".weight"), layer.weight()));
            out.put(prefix + ".bias", new FloatTensor(shapes.get(prefix + ".bias"), layer.bias().clone()));
        }
    }
}
