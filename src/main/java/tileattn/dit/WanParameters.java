package tileattn.dit;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The parameter names and shapes of a Wan transformer in the diffusers layout ({@code WanTransformer3DModel}),
 * which is how the published checkpoints are stored. Linear weights are [out, in] as in PyTorch. Names follow
 * the model's order: embeddings, then blocks, then the head.
 *
 * <p>Compared with the original Wan code: diffusers' {@code attn1}/{@code attn2} are {@code self_attn}/{@code
 * cross_attn}, {@code to_out.0} is {@code o}, {@code norm2} is the cross-attention's affine LayerNorm (Wan's
 * {@code norm3}), {@code scale_shift_table} is {@code modulation}, and the top-level {@code scale_shift_table} and
 * {@code proj_out} are the head's modulation and linear layer.
 */
public final class WanParameters {

    public static final String PATCH_EMBEDDING = "patch_embedding";
    public static final String TIME_1 = "condition_embedder.time_embedder.linear_1";
    public static final String TIME_2 = "condition_embedder.time_embedder.linear_2";
    public static final String TIME_PROJ = "condition_embedder.time_proj";
    public static final String TEXT_1 = "condition_embedder.text_embedder.linear_1";
    public static final String TEXT_2 = "condition_embedder.text_embedder.linear_2";
    public static final String PROJ_OUT = "proj_out";
    public static final String HEAD_MODULATION = "scale_shift_table";

    private WanParameters() {
    }

    /** Prefix of block {@code i}'s parameters, e.g. "blocks.3.". */
    public static String block(int i) {
        return "blocks." + i + ".";
    }

    /** Every parameter name with its shape, in model order. */
    public static Map<String, int[]> shapes(WanConfig c) {
        Map<String, int[]> m = new LinkedHashMap<>();
        int dim = c.dim();
        m.put(PATCH_EMBEDDING + ".weight", new int[]{dim, c.inChannels(), c.patch().t(), c.patch().h(), c.patch().w()});
        m.put(PATCH_EMBEDDING + ".bias", new int[]{dim});
        linear(m, TIME_1, c.freqDim(), dim);
        linear(m, TIME_2, dim, dim);
        linear(m, TIME_PROJ, dim, 6 * dim);
        linear(m, TEXT_1, c.textDim(), dim);
        linear(m, TEXT_2, dim, dim);
        for (int i = 0; i < c.layers(); i++) {
            String b = block(i);
            m.put(b + "scale_shift_table", new int[]{1, 6, dim});
            for (String attn : new String[]{"attn1.", "attn2."}) {
                linear(m, b + attn + "to_q", dim, dim);
                linear(m, b + attn + "to_k", dim, dim);
                linear(m, b + attn + "to_v", dim, dim);
                linear(m, b + attn + "to_out.0", dim, dim);
                m.put(b + attn + "norm_q.weight", new int[]{dim});
                m.put(b + attn + "norm_k.weight", new int[]{dim});
            }
            m.put(b + "norm2.weight", new int[]{dim});
            m.put(b + "norm2.bias", new int[]{dim});
            linear(m, b + "ffn.net.0.proj", dim, c.ffnDim());
            linear(m, b + "ffn.net.2", c.ffnDim(), dim);
        }
        m.put(HEAD_MODULATION, new int[]{1, 2, dim});
        linear(m, PROJ_OUT, dim, c.patchOutputs());
        return m;
    }

    private static void linear(Map<String, int[]> m, String name, int in, int out) {
        m.put(name + ".weight", new int[]{out, in});
        m.put(name + ".bias", new int[]{out});
    }
}
