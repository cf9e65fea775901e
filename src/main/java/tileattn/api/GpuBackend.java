package tileattn.api;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import tileattn.cpu.CpuAttention;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaStream;
import tileattn.cuda.CudaUnavailableException;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.kernels.GpuSupport;
import tileattn.kernels.KernelLibrary;
import tileattn.kernels.KvRangePlan;
import tileattn.kernels.QueryRangePlan;
import tileattn.kernels.TileAttentionBackwardKernel;
import tileattn.kernels.TileAttentionKernel;
import tileattn.kernels.TileOrderKernel;
import tileattn.kernels.VsaKernels;
import tileattn.kernels.VsaPlan;
import tileattn.kernels.VsaWorkspace;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;
import tileattn.tensor.FloatTensor;

/**
 * Dense, STA and VSA attention on a CUDA GPU, forward and, for training, backward ({@link TileAttentionKernel},
 * {@link TileAttentionBackwardKernel}, {@link VsaKernels}: bf16 or fp16 operands, fp32 accumulation, d = 64 or 128).
 *
 * <p>Two ways in:
 * <ul>
 * <li>Host tensors, through {@link Attention}: {@code new Attention(gpu).attend(q, k, v, spec)} uploads the fp32
 *     raster-order inputs as {@link #hostDType()} (bf16 unless fp16 was asked for), reorders tokens into tiles on
 *     the device, computes, reorders back and downloads fp32. VSA likewise (its work tables and workspace are
 *     allocated per call).</li>
 * <li>Training, through {@link Attention#forwardForTraining}: the forward keeps its inputs, output and log-sum-exp
 *     (or VSA's workspace) on the device in a scope owned by the returned tape, and each backward uploads dOut and
 *     downloads fp32 gradients. Close the tape to free that memory; closing this backend closes the tapes still
 *     open.</li>
 * <li>Device tensors, for a DiT that keeps its activations on the GPU: {@link #attend(DeviceTensor, DeviceTensor,
 *     DeviceTensor, AttentionSpec, CudaStream)} on tile-order bf16/fp16 tensors (the fast path: tile once per
 *     forward, attend in every layer; queued on the stream, no host synchronisation), and
 *     {@link #attendRaster(DeviceTensor, DeviceTensor, DeviceTensor, AttentionSpec, CudaStream)} on raster-order
 *     tensors, which reorders around the kernel and waits for it. These take dense and STA specs; device tensors
 *     for VSA go to {@link VsaKernels} directly.</li>
 * </ul>
 * Device inputs are not scanned for NaN (that would cost a pass over them); host inputs are, by {@link Attention}.
 * The kernels' work tables are built once per layout and window set and kept on the device until {@link #close}.
 * Every temporary lives in a {@link DeviceScope} closed before the call returns, also when it fails, so an
 * exception (a {@link tileattn.cuda.CudaOutOfMemoryException} included) leaves the backend usable.
 */
public final class GpuBackend implements AttentionBackend, AutoCloseable {

    static final String VSA_DEVICE_UNSUPPORTED = "GpuBackend.attend takes dense and STA specs; VSA on device tensors "
            + "runs through tileattn.kernels.VsaKernels (host tensors: new Attention(gpu).attend)";

    private final CudaContext context;
    private final boolean ownsContext;
    private final DType hostDType;
    private final TileAttentionKernel kernel;
    private final TileOrderKernel tileOrder;
    private final TileAttentionBackwardKernel backwardKernel;
    private final VsaKernels vsaKernels;
    private final PlanCache plans;
    /** Training tapes not yet closed, closed with this backend (their scopes must go before the context). */
    private final Set<GpuTape> tapes = new LinkedHashSet<>();
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
        this.backwardKernel = new TileAttentionBackwardKernel(library);
        // VSA's fine kernel: the Hopper one where the forward kernel is a Hopper one (VsaKernels says why not the
        // warp-specialized one), else the portable one.
        this.vsaKernels = new VsaKernels(library, kernel.path() == TileAttentionKernel.Path.PORTABLE
                ? TileAttentionKernel.Path.PORTABLE : TileAttentionKernel.Path.AUTO);
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

    /** Tile-order host tensors, as {@link AttentionBackend} defines it. */
    @Override
    public FloatTensor vsa(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid, int topK,
                           float scale) {
        return vsaOnDevice(q, k, v, gate, grid, topK, scale, false);
    }

    /** Raster-order host tensors: the tokens (and the gate's) are reordered on the device. */
    @Override
    public FloatTensor vsaRaster(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                 int topK, float scale) {
        return vsaOnDevice(q, k, v, gate, grid, topK, scale, true);
    }

    /** Plan and workspace per call: unlike STA's, VSA's KV lists depend on the data and are written every forward. */
    private FloatTensor vsaOnDevice(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                    int topK, float scale, boolean raster) {
        checkOpen();
        DeviceInputChecks.headDim(q.dim(3));
        CudaStream stream = context.defaultStream();
        TokenLayout layout = new TokenLayout(grid, 0);
        try (DeviceScope scope = context.openScope()) {
            FloatTensor[] host = {q, k, v, gate};
            DeviceTensor[] tiles = new DeviceTensor[host.length];
            for (int i = 0; i < host.length; i++) {
                if (host[i] != null) {
                    DeviceTensor uploaded = DeviceTensor.upload(scope, host[i], hostDType);
                    tiles[i] = raster ? toTileOrder(uploaded, layout, stream) : uploaded;
                }
            }
            VsaPlan plan = vsaKernels.plan(grid, q.dim(0), q.dim(1), topK, scope);
            VsaWorkspace ws = VsaWorkspace.allocate(plan, hostDType, q.dim(3), false, scope);
            DeviceTensor out = scope.allocateTensor(hostDType, q.shape());
            vsaKernels.forward(tiles[0], tiles[1], tiles[2], tiles[3], out, ws, scale, stream);
            DeviceTensor result = raster ? toRaster(out, layout, stream) : out;
            stream.synchronize();
            return result.download();
        }
    }

    // ---- training: tapes that keep the forward on the device

    @Override
    public TileOrderTape denseForTraining(FloatTensor q, FloatTensor k, FloatTensor v, float scale) {
        int seq = q.dim(2), heads = q.dim(1);
        return tileAttentionForTraining(q, k, v, KvRangePlan.dense(seq, heads), QueryRangePlan.dense(seq, heads),
                scale);
    }

    /** Tile-order host tensors, as {@link AttentionBackend} defines it. */
    @Override
    public TileOrderTape staForTraining(FloatTensor q, FloatTensor k, FloatTensor v, TokenLayout layout,
                                        Window[] windowsPerHead, float scale) {
        return tileAttentionForTraining(q, k, v, KvRangePlan.sta(layout, windowsPerHead),
                QueryRangePlan.sta(layout, windowsPerHead), scale);
    }

    /**
     * Dense or STA forward keeping q, k, v, o, the log-sum-exp and both plans (the forward's, and its transpose for
     * dK/dV) in the tape's scope; the backward's scratch (delta, lse in log2; HOPPER_FUSED's dQ accumulator) is
     * allocated per backward.
     */
    private TileOrderTape tileAttentionForTraining(FloatTensor q, FloatTensor k, FloatTensor v, KvRangePlan queries,
                                                   QueryRangePlan keys, float scale) {
        DeviceInputChecks.headDim(q.dim(3));
        CudaStream stream = context.defaultStream();
        int batch = q.dim(0), heads = q.dim(1), seq = q.dim(2), d = q.dim(3);
        return openTape(false, scope -> {
            DeviceTensor dq = DeviceTensor.upload(scope, q, hostDType);
            DeviceTensor dk = DeviceTensor.upload(scope, k, hostDType);
            DeviceTensor dv = DeviceTensor.upload(scope, v, hostDType);
            DeviceTensor out = scope.allocateTensor(hostDType, q.shape());
            DeviceTensor lse = scope.allocateTensor(DType.F32, batch, heads, seq);
            TileAttentionBackwardKernel.DevicePlan plan = TileAttentionBackwardKernel.upload(queries, keys, scope);
            kernel.forward(dq, dk, dv, out, lse, plan.queries(), scale, stream);
            stream.synchronize();
            GpuTape.Backward backward = (dOut, gq, gk, gv, noGate, scratch) -> backwardKernel.backward(dq, dk, dv,
                    out, lse, dOut, gq, gk, gv, plan,
                    scratch.allocate(backwardKernel.workspaceBytesFor(batch, heads, seq, d)), scale, stream);
            return new Forward(out.download(), backward);
        });
    }

    /** Tile-order host tensors; the tape keeps a training {@link VsaWorkspace} (selection, pooled tensors, lse). */
    @Override
    public TileOrderTape vsaForTraining(FloatTensor q, FloatTensor k, FloatTensor v, FloatTensor gate, TileGrid grid,
                                        int topK, float scale) {
        DeviceInputChecks.headDim(q.dim(3));
        CudaStream stream = context.defaultStream();
        return openTape(gate != null, scope -> {
            DeviceTensor dq = DeviceTensor.upload(scope, q, hostDType);
            DeviceTensor dk = DeviceTensor.upload(scope, k, hostDType);
            DeviceTensor dv = DeviceTensor.upload(scope, v, hostDType);
            DeviceTensor dg = gate == null ? null : DeviceTensor.upload(scope, gate, hostDType);
            VsaPlan plan = vsaKernels.plan(grid, q.dim(0), q.dim(1), topK, scope);
            VsaWorkspace ws = VsaWorkspace.allocate(plan, hostDType, q.dim(3), true, scope);
            DeviceTensor out = scope.allocateTensor(hostDType, q.shape());
            vsaKernels.forward(dq, dk, dv, dg, out, ws, scale, stream);
            stream.synchronize();
            GpuTape.Backward backward = (dOut, gq, gk, gv, gGate, scratch) ->
                    vsaKernels.backward(dq, dk, dv, dg, dOut, gq, gk, gv, gGate, ws, scale, stream);
            return new Forward(out.download(), backward);
        });
    }

    /** A training forward's host output and the backward over what it left in its scope. */
    private record Forward(FloatTensor out, GpuTape.Backward backward) {
    }

    @FunctionalInterface
    private interface TrainingForward {
        Forward run(DeviceScope scope);
    }

    /**
     * Runs {@code forward} in a new scope that becomes the tape's; on failure the scope is closed, so nothing leaks.
     * Everything runs on the legacy default stream, which the synchronous host-to-device copies are ordered with.
     */
    private GpuTape openTape(boolean gated, TrainingForward forward) {
        checkOpen();
        DeviceScope scope = context.openScope();
        GpuTape tape;
        try {
            Forward f = forward.run(scope);
            tape = new GpuTape(this, scope, f.out(), hostDType, gated, f.backward());
        } catch (RuntimeException e) {
            try {
                scope.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        synchronized (this) {
            if (open) {
                tapes.add(tape);
                return tape;
            }
        }
        tape.close();
        throw new IllegalStateException("this GpuBackend was closed during the training forward");
    }

    /** Called by a tape when it closes. */
    synchronized void forget(GpuTape tape) {
        tapes.remove(tape);
    }

    /** Training tapes not yet closed. */
    synchronized int openTapes() {
        return tapes.size();
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
     * Attention on tile-order device tensors into {@code out} (q's shape and type, or token rows [B, S, heads·d] of
     * q's type: the matrix an output projection reads; not overlapping the inputs), queued on {@code stream} without
     * waiting. The first call with a new layout and window set also builds and uploads the kernel's work tables,
     * which waits for the device once.
     */
    public void attend(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, AttentionSpec spec,
                       float scale, CudaStream stream) {
        boolean tokenRows = out != null && out.rank() == 3;
        DeviceInputChecks.tensors(q, k, v, tokenRows ? null : out);
        if (tokenRows) {
            DeviceInputChecks.tokenRows(q, out);
        }
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
            case AttentionSpec.Vsa vsa -> throw new UnsupportedOperationException(VSA_DEVICE_UNSUPPORTED);
        };
    }

    /** Work tables held on the device now (at most {@link PlanCache#CAPACITY}). */
    synchronized int cachedPlans() {
        return plans.size();
    }

    private void closeTapes() {
        RuntimeException failure = null;
        for (GpuTape tape : List.copyOf(tapes)) {
            try {
                tape.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        tapes.clear();
        if (failure != null) {
            throw failure;
        }
    }

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("this GpuBackend was closed");
        }
    }

    /**
     * Closes the training tapes still open, frees the cached work tables and, for {@link #open()}, releases the
     * context.
     */
    @Override
    public synchronized void close() {
        if (!open) {
            return;
        }
        open = false;
        try {
            closeTapes();
            plans.close();
        } finally {
            if (ownsContext) {
                context.close();
            }
        }
    }
}
