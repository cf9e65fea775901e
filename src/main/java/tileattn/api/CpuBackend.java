package tileattn.api;

import java.util.function.Function;
import tileattn.cpu.AttentionResult;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.CpuAttentionBackward;
import tileattn.cpu.Gradients;
import tileattn.cpu.VsaForward;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** The multi-threaded fp32 Vector API kernels of {@link CpuAttention} and {@link CpuAttentionBackward}. */
public final class CpuBackend implements AttentionBackend {

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return CpuAttention.dense(q, k, v, scale);
    }

    @Override
    public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
                           float scale) {
        return CpuAttention.sta(q, k, v, layout, windowsPerHead, scale);
    }

    @Override
    public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK,
                           float scale) {
        return CpuAttention.vsa(q, k, v, gate, grid, topK, scale).out();
    }

    @Override
    public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        AttentionResult fwd = CpuAttention.denseForward(q, k, v, scale);
        return new CpuTape(fwd.out(),
                dOut -> CpuAttentionBackward.dense(q, k, v, fwd.out(), fwd.lse(), dOut, scale));
    }

    @Override
    public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                        Window[] windowsPerHead, float scale) {
        Window[] windows = windowsPerHead.clone();
        AttentionResult fwd = CpuAttention.staForward(q, k, v, layout, windows, scale);
        return new CpuTape(fwd.out(),
                dOut -> CpuAttentionBackward.sta(q, k, v, fwd.out(), fwd.lse(), dOut, layout, windows, scale));
    }

    @Override
    public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                        int topK, float scale) {
        VsaForward fwd = CpuAttention.vsa(q, k, v, gate, grid, topK, scale);
        return new CpuTape(fwd.out(), dOut -> CpuAttentionBackward.vsa(fwd, q, k, v, gate, dOut, grid, scale));
    }

    /** The forward's output and a backward closed over the forward's state; the CPU backward only reads it. */
    private record CpuTape(FloatTensor out, Function<FloatTensor, Gradients> gradients) implements TileOrderTape {

        @Override
        public AttentionGradients backward(FloatTensor dOut) {
            Gradients g = gradients.apply(dOut);
            return new AttentionGradients(g.dq(), g.dk(), g.dv(), g.dgate());
        }
    }
}
