package tileattn.search;

import java.util.concurrent.ForkJoinPool;
import tileattn.cpu.CpuAttention;
import tileattn.cpu.VectorOpsProvider;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/** The search on the CPU: tileattn's fp32 attention, computing only the pairs each window allows. */
public final class CpuBackend implements AttentionBackend {

    @Override
    public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return CpuAttention.dense(q, k, v, scale);
    }

    @Override
    public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead, float scale) {
        return CpuAttention.sta(q, k, v, layout, windowsPerHead, scale);
    }

    @Override
    public String description() {
        return "CPU, fp32, " + ForkJoinPool.getCommonPoolParallelism() + " worker threads, "
                + VectorOpsProvider.get().name();
    }
}
