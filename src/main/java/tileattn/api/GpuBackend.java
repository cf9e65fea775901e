package tileattn.api;

import java.util.Objects;
import tileattn.cpu.CpuAttention;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.cuda.CudaUnavailableException;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.kernels.GpuSupport;
import tileattn.kernels.KernelLibrary;
import tileattn.kernels.TileAttentionKernel;
import tileattn.kernels.TileOrderKernel;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Dense and STA attention forward on a CUDA GPU ({@link TileAttentionKernel}: bf16 or fp16 operands, fp32
 * accumulation, d = 64 or 128). VSA and the training forward have no GPU path yet: asking for them throws
 * {@link UnsupportedOperationException} rather than computing on the CPU behind the caller's back.
 *
 * <p>Two ways in:
 * <ul>
 * <li>Host tensors, through {@link Attention}: {@code new Attention(gpu).attend(q, k, v, spec)} uploads the fp32
 *     raster-order inputs as {@link #hostDType()} (bf16 unless fp16 was asked for), reorders tokens into tiles on
 *     the device, computes, reorders back and downloads fp32.</li>
 * <li>Device tensors, for a DiT that keeps its activations on the GPU: {@link #attend(DeviceTensor, DeviceTensor,
 *     DeviceTensor, AttentionSpec, CudaStream)} on tile-order bf16/fp16 tensors (the fast path: tile once per
 *     forward, attend in every layer; queued on the stream, no host synchronisation), and
 *     {@link #attendRaster(DeviceTensor, DeviceTensor, DeviceTensor, AttentionSpec, CudaStream)} on raster-order
 *     tensors, which reorders around the kernel and waits for it.</li>
 * </ul>
 * Device inputs are not scanned for NaN (that would cost a pass over them); host inputs are, by {@link Attention}.
 * The kernels' work tables are built once per layout and window set and kept on the device until {@link #close}.
 * Every temporary lives in a {@link DeviceScope} closed before the call returns, also when it fails, so an
 * exception (a {@link tileattn.cuda.CudaOutOfMemoryException} included) leaves the backend usable.
 */
public final class GpuBackend implements AttentionBackend, AutoCloseable {

    static final String VSA_UNSUPPORTED = "VSA has no GPU kernel in this version of tileattn; compute it on the CPU "
            + "(Attention.cpu(), or --device cpu / auto on the command line)";

    private final CudaContext context;
    private final boolean ownsContext;
    private final DType hostDType;
    private final TileAttentionKernel kernel;
    private final TileOrderKernel tileOrder;
    private final PlanCache plans;
    private volatile boolean open = true;

    /**
     * A backend on an existing context (the caller keeps owning it and closes it after this backend).
     *
     * @param hostDType the type host tensors are uploaded as: {@link DType#BF16} or {@link DType#F16}
     * @param path which kernel runs ({@link TileAttentionKernel.Path#AUTO}: the warp-specialized Hopper one on compute
     *             capability 9.0)
     */
    public GpuBackend(CudaContext context, DType hostDType, TileAttentionKernel.Path path) {
        this(context, false, hostDType, path);
    }

    private GpuBackend(CudaContext context, boolean ownsContext, DType hostDType, TileAttentionKernel.Path path) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(path, "path");
        if (hostDType != DType.BF16 && hostDType != DType.F16) {
            throw new IllegalArgumentException("the GPU computes in BF16 or F16, not " + hostDType);
        }
        KernelLibrary library = KernelLibrary.of(context);
        this.context = context;
        this.ownsContext = ownsContext;
        this.hostDType = hostDType;
        this.kernel = new TileAttentionKernel(library, path);
        this.tileOrder = new TileOrderKernel(library);
        this.plans = new PlanCache(context);
    }

    /** bf16 on CUDA device 0 with the fastest kernel it runs. */
    public static GpuBackend open() {
        return open(DType.BF16, TileAttentionKernel.Path.AUTO);
    }

    /**
     * A backend on CUDA device 0 holding its own reference to the device's primary context.
     *
     * @throws CudaUnavailableException naming the reason when the GPU path cannot run here
     */
    public static GpuBackend open(DType hostDType, TileAttentionKernel.Path path) {
        GpuSupport.whyUnusable().ifPresent(why -> {
            throw new CudaUnavailableException("no usable GPU: " + why);
        });
        CudaContext context = CudaContext.primary(0);
        try {
            return new GpuBackend(context, true, hostDType, path);
        } catch (RuntimeException e) {
            try {
                context.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    @Override
    public String name() {
        return "gpu";
    }

    public CudaContext context() {
        return context;
    }

    /** The element type host tensors are computed in. */
    public DType hostDType() {
        return hostDType;
    }

    /** The kernel that runs (portable or one of the Hopper ones). */
    public TileAttentionKernel.Path kernelPath() {
        return kernel.path();
    }

    /** Where attention ran, for logs: the device and the kernel. */
    public String describe() {
        String what = switch (kernel.path()) {
            case HOPPER_WARP_SPECIALIZED -> "warp-specialized Hopper (wgmma) kernel";
            case HOPPER -> "Hopper (wgmma) kernel";
            default -> "portable (mma.sync) kernel";
        };
        return context.device().name() + ", " + what + ", " + hostDType;
    }

    // ---- host tensors (called by Attention with checked inputs)

    @Override
    public FloatTensor dense(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        return onDevice(q, k, v, false, null, (dq, dk, dv, out, stream) ->
                attend(dq, dk, dv, out, AttentionSpec.dense(), scale, stream));
    }

    /** Tile-order host tensors, as {@link AttentionBackend} defines it. */
    @Override
    public FloatTensor sta(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout, Window[] windowsPerHead,
                           float scale) {
        AttentionSpec spec = AttentionSpec.Sta.perHead(layout, windowsPerHead);
        return onDevice(q, k, v, false, null, (dq, dk, dv, out, stream) -> attend(dq, dk, dv, out, spec, scale, stream));
    }

    /** Raster-order host tensors: the tokens are reordered on the device. */
    @Override
    public FloatTensor staRaster(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                 Window[] windowsPerHead, float scale) {
        AttentionSpec spec = AttentionSpec.Sta.perHead(layout, windowsPerHead);
        return onDevice(q, k, v, true, layout, (dq, dk, dv, out, stream) -> attend(dq, dk, dv, out, spec, scale, stream));
    }

    @Override
    public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK,
                           float scale) {
        throw new UnsupportedOperationException(VSA_UNSUPPORTED);
    }

    static final String TRAINING_UNSUPPORTED = "the training forward and backward have no GPU path in this version "
            + "of tileattn; run them on the CPU (Attention.cpu().forwardForTraining)";

    @Override
    public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        throw new UnsupportedOperationException(TRAINING_UNSUPPORTED);
    }

    @Override
    public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                        Window[] windowsPerHead, float scale) {
        throw new UnsupportedOperationException(TRAINING_UNSUPPORTED);
    }

    @Override
    public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                        int topK, float scale) {
        throw new UnsupportedOperationException(TRAINING_UNSUPPORTED);
    }

    @FunctionalInterface
    private interface DeviceWork {
        void run(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, CudaStream stream);
    }

    /**
     * Uploads q, k, v, runs {@code work} on tile-order device tensors and downloads the result. Everything runs on
     * the legacy default stream, which the synchronous host-to-device copies are ordered with.
     */
    private FloatTensor onDevice(FloatTensor q, FloatTensor k, FloatTensor v, boolean raster, TokenLayout layout,
                                 DeviceWork work) {
        checkOpen();
        DeviceInputChecks.headDim(q.dim(3));
        CudaStream stream = context.defaultStream();
        try (DeviceScope scope = context.openScope()) {
            DeviceTensor dq = DeviceTensor.upload(scope, q, hostDType);
            DeviceTensor dk = DeviceTensor.upload(scope, k, hostDType);
            DeviceTensor dv = DeviceTensor.upload(scope, v, hostDType);
            DeviceTensor out = scope.allocateTensor(hostDType, q.shape());
            if (!raster) {
                work.run(dq, dk, dv, out, stream);
                stream.synchronize();
                return out.download();
            }
            DeviceTensor tq = scope.allocateTensor(hostDType, q.shape());
            DeviceTensor tk = scope.allocateTensor(hostDType, q.shape());
            DeviceTensor tv = scope.allocateTensor(hostDType, q.shape());
            tileOrder.toTileOrder(dq, tq, layout, stream);
            tileOrder.toTileOrder(dk, tk, layout, stream);
            tileOrder.toTileOrder(dv, tv, layout, stream);
            work.run(tq, tk, tv, out, stream);
            tileOrder.toRaster(out, dq, layout, stream);   // q's raster buffer is free again: reuse it
            stream.synchronize();
            return dq.download();
        }
    }

    // ---- device tensors

    /**
     * A tile-order copy of a raster-order device tensor [B, heads, S, d] (any element type), allocated in the
     * source's {@link DeviceScope} and queued on {@code stream}: a DiT reorders once per forward pass and attends in
     * tile order in every layer.
     */
    public DeviceTensor toTileOrder(DeviceTensor raster, TokenLayout layout, CudaStream stream) {
        checkOpen();
        checkReorderable(raster, layout);
        DeviceTensor tiles = raster.buffer().scope().allocateTensor(raster.dtype(), raster.shape());
        tileOrder.toTileOrder(raster, tiles, layout, stream);
        return tiles;
    }

    /** The inverse of {@link #toTileOrder}: a raster-order copy, in the source's scope, queued on {@code stream}. */
    public DeviceTensor toRaster(DeviceTensor tiles, TokenLayout layout, CudaStream stream) {
        checkOpen();
        checkReorderable(tiles, layout);
        DeviceTensor raster = tiles.buffer().scope().allocateTensor(tiles.dtype(), tiles.shape());
        tileOrder.toRaster(tiles, raster, layout, stream);
        return raster;
    }

    /**
     * Attention on tile-order device tensors [B, heads, S, d] (bf16 or fp16) with the default scale 1/sqrt(d),
     * queued on {@code stream}. The output is allocated in q's {@link DeviceScope}; read it after the stream has
     * reached this point.
     */
    public DeviceTensor attend(DeviceTensor q, DeviceTensor k, DeviceTensor v, AttentionSpec spec, CudaStream stream) {
        DeviceInputChecks.tensors(q, k, v, null);
        checkSpec(spec, q);
        DeviceTensor out = q.buffer().scope().allocateTensor(q.dtype(), q.shape());
        attend(q, k, v, out, spec, CpuAttention.defaultScale(q.dim(3)), stream);
        return out;
    }

    /**
     * Attention on tile-order device tensors into {@code out} (same shape and type, not overlapping the inputs),
     * queued on {@code stream} without waiting. The first call with a new layout and window set also builds and
     * uploads the kernel's work tables, which waits for the device once.
     */
    public void attend(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, AttentionSpec spec,
                       float scale, CudaStream stream) {
        DeviceInputChecks.tensors(q, k, v, out);
        InputChecks.scale(scale);
        Objects.requireNonNull(stream, "stream");
        Window[] windows = checkSpec(spec, q);
        synchronized (this) {
            checkOpen();
            TileAttentionKernel.DevicePlan plan = windows == null ? plans.dense(q.dim(2), q.dim(1))
                    : plans.sta(((AttentionSpec.Sta) spec).layout(), windows);
            kernel.forward(q, k, v, out, null, plan, scale, stream);
        }
    }

    /**
     * Attention on raster-order device tensors (tokens as a video model produces them) with the default scale;
     * the output, in raster order, is allocated in q's {@link DeviceScope}. STA reorders q, k, v into tile-order
     * temporaries and the output back; returns once the result is complete.
     */
    public DeviceTensor attendRaster(DeviceTensor q, DeviceTensor k, DeviceTensor v, AttentionSpec spec,
                                     CudaStream stream) {
        DeviceInputChecks.tensors(q, k, v, null);
        checkSpec(spec, q);
        DeviceTensor out = q.buffer().scope().allocateTensor(q.dtype(), q.shape());
        attendRaster(q, k, v, out, spec, CpuAttention.defaultScale(q.dim(3)), stream);
        return out;
    }

    /** {@link #attendRaster(DeviceTensor, DeviceTensor, DeviceTensor, AttentionSpec, CudaStream)} into {@code out}. */
    public void attendRaster(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, AttentionSpec spec,
                             float scale, CudaStream stream) {
        DeviceInputChecks.tensors(q, k, v, out);
        InputChecks.scale(scale);
        Objects.requireNonNull(stream, "stream");
        if (checkSpec(spec, q) == null) {
            attend(q, k, v, out, spec, scale, stream);   // dense does not depend on token order
            stream.synchronize();
            return;
        }
        TokenLayout layout = ((AttentionSpec.Sta) spec).layout();
        try (DeviceScope temporaries = context.openScope()) {
            DeviceTensor tq = temporaries.allocateTensor(q.dtype(), q.shape());
            DeviceTensor tk = temporaries.allocateTensor(q.dtype(), q.shape());
            DeviceTensor tv = temporaries.allocateTensor(q.dtype(), q.shape());
            DeviceTensor to = temporaries.allocateTensor(q.dtype(), q.shape());
            tileOrder.toTileOrder(q, tq, layout, stream);
            tileOrder.toTileOrder(k, tk, layout, stream);
            tileOrder.toTileOrder(v, tv, layout, stream);
            attend(tq, tk, tv, to, spec, scale, stream);
            tileOrder.toRaster(to, out, layout, stream);
            stream.synchronize();
        }
    }

    private static void checkReorderable(DeviceTensor t, TokenLayout layout) {
        Objects.requireNonNull(t, "tensor");
        Objects.requireNonNull(layout, "layout");
        if (t.rank() != 4 || t.dim(2) != layout.sequenceLength()) {
            throw new IllegalArgumentException("reordering needs a [B, heads, S, d] tensor with S = "
                    + layout.sequenceLength() + " (" + layout.videoTokens() + " video + " + layout.textLength()
                    + " text tokens), got " + t.shapeString());
        }
    }

    /** Validates the spec against q's shape; returns the per-head windows of STA, null for dense. */
    private static Window[] checkSpec(AttentionSpec spec, DeviceTensor q) {
        if (spec == null) {
            throw new IllegalArgumentException("attention spec is null");
        }
        return switch (spec) {
            case AttentionSpec.Dense dense -> null;
            case AttentionSpec.Sta sta -> {
                TokenLayout layout = sta.layout();
                InputChecks.sequence(q.dim(2), layout);
                Window[] windows = sta.windowsFor(q.dim(1));
                InputChecks.windows(windows, layout.grid());
                yield windows;
            }
            case AttentionSpec.Vsa vsa -> throw new UnsupportedOperationException(VSA_UNSUPPORTED);
        };
    }

    /** Work tables held on the device now (at most {@link PlanCache#CAPACITY}). */
    synchronized int cachedPlans() {
        return plans.size();
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("this GpuBackend was closed");
        }
    }

    /** Frees the cached work tables and, for {@link #open()}, releases the context. */
    @Override
    public synchronized void close() {
        if (!open) {
            return;
        }
        open = false;
        try {
            plans.close();
        } finally {
            if (ownsContext) {
                context.close();
            }
        }
    }
}
