package tileattn.cli;

import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;
import tileattn.api.AttentionSpec;
import tileattn.api.GpuBackend;
import tileattn.cpu.CpuAttention;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.example.LocalityExample;
import tileattn.kernels.KernelLibrary;
import tileattn.kernels.VsaKernels;
import tileattn.kernels.VsaPlan;
import tileattn.kernels.VsaWorkspace;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.tensor.FloatTensor;

/**
 * The demo's rows on the GPU: each example is uploaded once as bf16 and reordered into tiles once
 * per layout on the device, as a DiT would; the time reported is the attention kernel's alone (CUDA events,
 * median of {@value #TIMED} runs after {@value #WARM_UP} warm-up), without uploads and reordering.
 */
final class GpuDemoRunner implements AutoCloseable {

    static final int WARM_UP = 1;
    static final int TIMED = 3;

    private record Key(LocalityExample example, TokenLayout layout) {
    }

    private final GpuBackend gpu;
    private final VsaKernels vsa;
    private final DeviceScope scope;
    private final CudaStream stream;
    private final CudaEvent start;
    private final CudaEvent end;
    private final Map<LocalityExample, DeviceTensor[]> raster = new IdentityHashMap<>();
    private final Map<Key, DeviceTensor[]> tiled = new HashMap<>();

    GpuDemoRunner() {
        gpu = GpuBackend.open();
        try {
            vsa = new VsaKernels(KernelLibrary.of(gpu.context()));
            scope = gpu.context().openScope();
            stream = scope.createStream();
            start = scope.createEvent();
            end = scope.createEvent();
        } catch (RuntimeException e) {
            gpu.close();
            throw e;
        }
    }

    String describe() {
        return gpu.describe();
    }

    /** Dense or STA on the example; the output comes back in raster order as fp32. */
    Measure.Timed<FloatTensor> run(LocalityExample example, AttentionSpec spec) {
        DeviceTensor[] in = raster.computeIfAbsent(example, this::upload);
        TokenLayout layout = spec instanceof AttentionSpec.Sta sta ? sta.layout() : null;
        if (layout != null) {
            DeviceTensor[] rasterIn = in;
            in = tiled.computeIfAbsent(new Key(example, layout), key -> new DeviceTensor[]{
                gpu.toTileOrder(rasterIn[0], layout, stream), gpu.toTileOrder(rasterIn[1], layout, stream),
                gpu.toTileOrder(rasterIn[2], layout, stream)});
        }
        float scale = CpuAttention.defaultScale(in[0].dim(3));
        try (DeviceScope run = gpu.context().openScope()) {
            DeviceTensor out = run.allocateTensor(in[0].dtype(), in[0].shape());
            double[] millis = new double[TIMED];
            for (int i = -WARM_UP; i < TIMED; i++) {
                start.record(stream);
                gpu.attend(in[0], in[1], in[2], out, spec, scale, stream);
                end.record(stream);
                float ms = CudaEvent.elapsedMillis(start, end);
                if (i >= 0) {
                    millis[i] = ms;
                }
            }
            DeviceTensor result = layout == null ? out : gpu.toRaster(out, layout, stream);
            stream.synchronize();
            return new Measure.Timed<>(result.download(), Measure.median(millis));
        }
    }

    /**
     * VSA keeping the top {@code topK} KV tiles with a zero gate (the coarse branch dropped, as the demo's CPU rows
     * do); the time covers the whole forward: pooling, coarse attention and top-k, fine attention, combine.
     */
    Measure.Timed<FloatTensor> runVsa(LocalityExample example, TileGrid grid, int topK) {
        DeviceTensor[] in = raster.computeIfAbsent(example, this::upload);
        TokenLayout layout = new TokenLayout(grid, 0);
        DeviceTensor[] tiles = tiled.computeIfAbsent(new Key(example, layout), key -> new DeviceTensor[]{
            gpu.toTileOrder(in[0], layout, stream), gpu.toTileOrder(in[1], layout, stream),
            gpu.toTileOrder(in[2], layout, stream)});
        float scale = CpuAttention.defaultScale(tiles[0].dim(3));
        try (DeviceScope run = gpu.context().openScope()) {
            DeviceTensor gate = run.allocateTensor(tiles[0].dtype(), tiles[0].shape());
            gate.buffer().fillAsync((byte) 0, stream);
            VsaPlan plan = vsa.plan(grid, tiles[0].dim(0), tiles[0].dim(1), topK, run);
            VsaWorkspace ws = VsaWorkspace.allocate(plan, tiles[0].dtype(), tiles[0].dim(3), false, run);
            DeviceTensor out = run.allocateTensor(tiles[0].dtype(), tiles[0].shape());
            double[] millis = new double[TIMED];
            for (int i = -WARM_UP; i < TIMED; i++) {
                start.record(stream);
                vsa.forward(tiles[0], tiles[1], tiles[2], gate, out, ws, scale, stream);
                end.record(stream);
                float ms = CudaEvent.elapsedMillis(start, end);
                if (i >= 0) {
                    millis[i] = ms;
                }
            }
            DeviceTensor result = gpu.toRaster(out, layout, stream);
            stream.synchronize();
            return new Measure.Timed<>(result.download(), Measure.median(millis));
        }
    }

    private DeviceTensor[] upload(LocalityExample example) {
        DeviceTensor[] tensors = {DeviceTensor.upload(scope, example.q(), DType.BF16),
            DeviceTensor.upload(scope, example.k(), DType.BF16), DeviceTensor.upload(scope, example.v(), DType.BF16)};
        // Copies from pageable memory may still be landing when cuMemcpyHtoD returns; the stream does not wait.
        gpu.context().synchronize();
        return tensors;
    }

    @Override
    public void close() {
        try {
            scope.close();
        } finally {
            gpu.close();
        }
    }
}
