package tileattn.dit;

import tileattn.tensor.FloatTensor;

/**
 * Flow-matching Euler sampling as Wan-2.1 runs it. Noise levels: σ_i = shift·u / (1 + (shift − 1)·u) with
 * u = 1 − i/N for i = 0..N (so σ_0 = 1 and σ_N = 0); the model is called at timestep 1000·σ_i and predicts the
 * velocity v = noise − clean; each step moves x by (σ_{i+1} − σ_i)·v. With classifier-free guidance the
 * conditional and unconditional predictions run as one batch of 2N and combine as v_u + g·(v_c − v_u).
 */
public final class FlowMatchSampler {

    /**
     * @param shift the schedule's shift (Wan's default 5.0)
     * @param guidance classifier-free guidance scale; 1 runs the conditional branch alone
     */
    public record Settings(int steps, double shift, double guidance, AttentionSchedule attention) {

        public Settings {
            if (steps < 1) {
                throw new IllegalArgumentException("steps must be >= 1, got " + steps);
            }
            if (!(shift > 0) || Double.isInfinite(shift)) {
                throw new IllegalArgumentException("shift must be a positive number, got " + shift);
            }
            if (!Double.isFinite(guidance)) {
                throw new IllegalArgumentException("guidance scale must be finite, got " + guidance);
            }
        }

        boolean guided() {
            return guidance != 1.0;
        }
    }

    /** Told after every step. */
    @FunctionalInterface
    public interface StepListener {
        void stepDone(int step, int steps, double sigma, SelfAttention attention, long nanos);
    }

    private FlowMatchSampler() {
    }

    /** σ_0..σ_N for N steps. */
    public static double[] sigmas(int steps, double shift) {
        double[] s = new double[steps + 1];
        for (int i = 0; i <= steps; i++) {
            double u = 1.0 - (double) i / steps;
            s[i] = shift * u / (1 + (shift - 1) * u);
        }
        return s;
    }

    /**
     * Denoises {@code noise} [N, C, T, H, W] under the N prompts of {@code text}; returns the final latent of the
     * same shape.
     */
    public static <C extends WanTransformer.Condition> FloatTensor sample(WanTransformer<C> model, FloatTensor noise, TextEmbeddings text, Settings settings,
                                     StepListener listener) {
        int n = noise.dim(0);
        if (text.prompts() != n) {
            throw new IllegalArgumentException(n + " latents but " + text.prompts() + " prompts");
        }
        if (settings.guided() && text.contextNull() == null) {
            throw new IllegalArgumentException("classifier-free guidance (scale " + settings.guidance() + ") needs "
                    + "embeddings of the negative prompt ('" + TextEmbeddings.CONTEXT_NULL + "'); give them or use "
                    + "guidance 1");
        }
        int l = model.config().textLength();
        FloatTensor context = settings.guided()
                ? stack(pad(text.context(), n, l), pad(text.contextNull(), n, l))
                : pad(text.context(), n, l);
        C condition = model.condition(context);
        int batch = condition.batch();

        try {
            double[] sigmas = sigmas(settings.steps(), settings.shift());
            float[] x = noise.data().clone();
            for (int step = 0; step < settings.steps(); step++) {
                long start = System.nanoTime();
                SelfAttention attention = settings.attention().at(step);
                float[] input = batch == n ? x : repeat(x, 2);
                float[] timesteps = new float[batch];
                java.util.Arrays.fill(timesteps, (float) (WanConfig.TRAIN_TIMESTEPS * sigmas[step]));
                int[] shape = noise.shape();
                shape[0] = batch;
                float[] v = model.forward(new FloatTensor(shape, input), timesteps, condition, attention).data();
                float dt = (float) (sigmas[step + 1] - sigmas[step]);
                int half = x.length;
                float g = (float) settings.guidance();
                for (int i = 0; i < half; i++) {
                    float velocity = batch == n ? v[i] : v[half + i] + g * (v[i] - v[half + i]);
                    x[i] += dt * velocity;
                }
                if (listener != null) {
                    listener.stepDone(step, settings.steps(), sigmas[step], attention, System.nanoTime() - start);
                }
            }
            return new FloatTensor(noise.shape(), x);
        } finally {
            // A GPU condition holds device memory; it is needed no longer.
            if (condition instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (Exception e) {
                    throw new IllegalStateException("releasing the text condition: " + e.getMessage(), e);
                }
            }
        }
    }

    /** [N or 1, L, D] zero-padded to [N, l, D], a single prompt repeated N times. */
    private static FloatTensor pad(FloatTensor t, int n, int l) {
        int given = t.dim(1), d = t.dim(2);
        float[] out = new float[n * l * d];
        for (int b = 0; b < n; b++) {
            int src = (t.dim(0) == 1 ? 0 : b) * given * d;
            System.arraycopy(t.data(), src, out, b * l * d, given * d);
        }
        return new FloatTensor(new int[]{n, l, d}, out);
    }

    private static FloatTensor stack(FloatTensor a, FloatTensor b) {
        float[] out = new float[a.size() + b.size()];
        System.arraycopy(a.data(), 0, out, 0, a.size());
        System.arraycopy(b.data(), 0, out, a.size(), b.size());
        return new FloatTensor(new int[]{a.dim(0) + b.dim(0), a.dim(1), a.dim(2)}, out);
    }

    private static float[] repeat(float[] x, int times) {
        float[] out = new float[x.length * times];
        for (int i = 0; i < times; i++) {
            System.arraycopy(x, 0, out, i * x.length, x.length);
        }
        return out;
    }
}
