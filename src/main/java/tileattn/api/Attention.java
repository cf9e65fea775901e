package tileattn.api;

import java.util.Objects;
import java.util.function.UnaryOperator;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.TokenPermutation;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * The entry point a Java DiT calls: attention on host tensors q, k, v shaped [batch, heads, S, d] with the
 * tokens in raster order (video tokens T-major, then H, then W, followed by any text tokens), returning the output
 * in the same shape and order. Inputs are validated first (shapes, sequence length, windows, top-k, gate, and
 * finiteness: NaN or infinity is rejected, naming the tensor and the first bad index); tokens are reordered into
 * tiles once (on the host, or on the device by {@link GpuBackend}), computed by the backend, and reordered back.
 *
 * <pre>{@code
 * TokenLayout layout = TokenLayout.of(new Shape3(30, 48, 80), new Shape3(6, 8, 8), 256);
 * FloatTensor out = Attention.cpu().attend(q, k, v, AttentionSpec.Sta.of(layout, new Window(3, 3, 3)));
 * try (GpuBackend gpu = GpuBackend.open()) {       // dense and STA in bf16 on CUDA device 0
 *     FloatTensor onGpu = new Attention(gpu).attend(q, k, v, AttentionSpec.Sta.of(layout, new Window(3, 3, 3)));
 * }
 *
 * try (AttentionTape tape = Attention.cpu().forwardForTraining(q, k, v, spec)) {   // keeps what backward needs
 *     AttentionGradients grads = tape.backward(dOut);       // dq, dk, dv (and dgate), raster order
 * }                                                         // close: a GPU tape frees its device memory here
 * }</pre>
 */
public final class Attention {

    private final AttentionBackend backend;

    public Attention(AttentionBackend backend) {
        this.backend = Objects.requireNonNull(backend, "backend");
    }

    public static Attention cpu() {
        return new Attention(new CpuBackend());
    }

    public AttentionBackend backend() {
        return backend;
    }

    /** Attention with the default scale 1/sqrt(d). */
    public FloatTensor attend(FloatTensor q, FloatTensor k, FloatTensor v, AttentionSpec spec) {
        InputChecks.shapes(q, k, v);
        return attend(q, k, v, spec, CpuAttention.defaultScale(q.dim(3)));
    }

    public FloatTensor attend(FloatTensor q, FloatTensor k, FloatTensor v, AttentionSpec spec, float scale) {
        Checked c = check(q, k, v, spec, scale);
        return switch (c.spec) {
            case AttentionSpec.Dense dense -> backend.dense(q, k, v, scale);
            // The backend reorders STA's and VSA's tokens itself: the GPU does it on the device.
            case AttentionSpec.Sta sta -> backend.staRaster(q, k, v, sta.layout(), c.windows, scale);
            case AttentionSpec.Vsa vsa -> backend.vsaRaster(q, k, v, c.gate, vsa.grid(), vsa.topK(), scale);
        };
    }

    /** The training forward with the default scale 1/sqrt(d). */
    public AttentionTape forwardForTraining(FloatTensor q, FloatTensor k, FloatTensor v, AttentionSpec spec) {
        InputChecks.shapes(q, k, v);
        return forwardForTraining(q, k, v, spec, CpuAttention.defaultScale(q.dim(3)));
    }

    /**
     * The forward pass of {@link #attend}, validated the same way, keeping what the backward needs (the inputs in
     * tile order, the output, the log-sum-exp or VSA's state). The tape holds its own copies of q, k, v and the gate:
     * changing the caller's tensors afterwards does not change the gradients.
     */
    public AttentionTape forwardForTraining(FloatTensor q, FloatTensor k, FloatTensor v, AttentionSpec spec,
                                            float scale) {
        Checked c = check(q, k, v, spec, scale);
        // Reordering copies; dense attention is not reordered, so it copies explicitly.
        TileOrderTape tape = switch (c.spec) {
            case AttentionSpec.Dense dense -> backend.denseForTraining(copy(q), copy(k), copy(v), scale);
            case AttentionSpec.Sta sta -> backend.staForTraining(c.tiles(q), c.tiles(k), c.tiles(v), sta.layout(),
                    c.windows, scale);
            case AttentionSpec.Vsa vsa -> backend.vsaForTraining(c.tiles(q), c.tiles(k), c.tiles(v), c.tiles(c.gate),
                    vsa.grid(), vsa.topK(), scale);
        };
        return new AttentionTape(tape, c.toTileOrder, c.toRaster, q.shape(), c.gate != null);
    }

    /**
     * A validated call: the reorderings between raster order and the backend's tile order (identities for dense),
     * the raster-order gate (null unless a VSA spec has one) and the per-head windows (null unless the spec is STA).
     * Inputs are reordered only where the caller needs it, so a backend that reorders on its own device gets them
     * untouched.
     */
    private record Checked(AttentionSpec spec, FloatTensor gate, Window[] windows,
                           UnaryOperator<FloatTensor> toTileOrder, UnaryOperator<FloatTensor> toRaster) {

        /** {@code t} in tile order; null stays null. */
        FloatTensor tiles(FloatTensor t) {
            return t == null ? null : toTileOrder.apply(t);
        }
    }

    private static Checked check(FloatTensor q, FloatTensor k, FloatTensor v, AttentionSpec spec, float scale) {
        InputChecks.shapes(q, k, v);
        InputChecks.scale(scale);
        if (spec == null) {
            throw new IllegalArgumentException("attention spec is null");
        }
        int heads = q.dim(1), s = q.dim(2);
        return switch (spec) {
            case AttentionSpec.Dense dense -> {
                checkFinite(q, k, v);
                yield new Checked(spec, null, null, UnaryOperator.identity(), UnaryOperator.identity());
            }
            case AttentionSpec.Sta sta -> {
                TokenLayout layout = sta.layout();
                InputChecks.sequence(s, layout);
                Window[] windows = sta.windowsFor(heads);
                InputChecks.windows(windows, layout.grid());
                checkFinite(q, k, v);
                yield new Checked(spec, null, windows, t -> TokenPermutation.toTileOrder(t, layout),
                        t -> TokenPermutation.toRaster(t, layout));
            }
            case AttentionSpec.Vsa vsa -> {
                TileGrid grid = vsa.grid();
                InputChecks.vsaVideo(s, grid);
                InputChecks.gate(vsa.gate(), q);
                checkFinite(q, k, v);
                if (vsa.gate() != null) {
                    InputChecks.finite(vsa.gate(), "gate");
                }
                yield new Checked(spec, vsa.gate(), null, t -> TokenPermutation.toTileOrder(t, grid),
                        t -> TokenPermutation.toRaster(t, grid));
            }
        };
    }

    private static FloatTensor copy(FloatTensor t) {
        return new FloatTensor(t.shape(), t.data().clone());
    }

    private static void checkFinite(FloatTensor q, FloatTensor k, FloatTensor v) {
        InputChecks.finite(q, "q");
        InputChecks.finite(k, "k");
        InputChecks.finite(v, "v");
    }
}
