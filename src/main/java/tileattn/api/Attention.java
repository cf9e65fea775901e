package tileattn.api;

import java.util.Objects;
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
        InputChecks.shapes(q, k, v);
        InputChecks.scale(scale);
        if (spec == null) {
            throw new IllegalArgumentException("attention spec is null");
        }
        int heads = q.dim(1), s = q.dim(2);
        return switch (spec) {
            case AttentionSpec.Dense dense -> {
                checkFinite(q, k, v);
                yield backend.dense(q, k, v, scale);
            }
            case AttentionSpec.Sta sta -> {
                TokenLayout layout = sta.layout();
                InputChecks.sequence(s, layout);
                Window[] windows = sta.windowsFor(heads);
                InputChecks.windows(windows, layout.grid());
                checkFinite(q, k, v);
                yield backend.staRaster(q, k, v, layout, windows, scale);
            }
            case AttentionSpec.Vsa vsa -> {
                TileGrid grid = vsa.grid();
                InputChecks.vsaVideo(s, grid);
                InputChecks.gate(vsa.gate(), q);
                checkFinite(q, k, v);
                if (vsa.gate() != null) {
                    InputChecks.finite(vsa.gate(), "gate");
                }
                FloatTensor gate = vsa.gate() == null ? null : TokenPermutation.toTileOrder(vsa.gate(), grid);
                FloatTensor out = backend.vsa(TokenPermutation.toTileOrder(q, grid),
                        TokenPermutation.toTileOrder(k, grid), TokenPermutation.toTileOrder(v, grid), gate, grid,
                        vsa.topK(), scale);
                yield TokenPermutation.toRaster(out, grid);
            }
        };
    }

    private static void checkFinite(FloatTensor q, FloatTensor k, FloatTensor v) {
        InputChecks.finite(q, "q");
        InputChecks.finite(k, "k");
        InputChecks.finite(v, "v");
    }
}
