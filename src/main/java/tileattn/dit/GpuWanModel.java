package tileattn.dit;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import tileattn.api.AttentionSpec;
import tileattn.api.GpuBackend;
import tileattn.blas.Gemm;
import tileattn.cpu.CpuAttention;
import tileattn.cuda.CudaContext;
import tileattn.cuda.CudaEvent;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.kernels.DitKernels;
import tileattn.kernels.KernelLibrary;
import tileattn.kernels.KvRangePlan;
import tileattn.kernels.TileAttentionKernel;
import tileattn.kernels.TokenColumns;
import tileattn.kernels.VsaKernels;
import tileattn.kernels.VsaPlan;
import tileattn.kernels.VsaWorkspace;
import tileattn.layout.Shape3;
import tileattn.layout.TileGrid;
import tileattn.layout.TokenLayout;
import tileattn.mask.TileLists;
import tileattn.mask.Window;
import tileattn.tensor.DType;
import tileattn.tensor.FloatTensor;

/**
 * The Wan-2.1 transformer of {@link WanModel} on a CUDA GPU: weights in bf16 uploaded once, activations on the
 * device (bf16, every norm's statistics in fp32; the residual stream in bf16 as diffusers' Wan keeps it, or in fp32,
 * which costs a third more of the residual kernels' memory traffic), matrix products through cuBLASLt
 * ({@link Gemm}, the FFN's tanh-GELU in its epilogue), norms, RoPE, modulation and the patch embedding in dit.cu
 * ({@link DitKernels}), and self-attention through {@link GpuBackend} (dense, STA) or {@link VsaKernels} (VSA,
 * coarse branch gated by zero).
 * Video tokens are put into the attention's tile order once, by the patch gather; RoPE tables are built for that
 * order and the head scatters back to the latent.
 *
 * <p>Per block: one product for q, k and v together; q and k RMS-normalised and rotated, and all three moved to
 * [B, heads, S, d], by one launch (with VSA, q and k only, pooled as they go, and the fine kernel reads v from the
 * product's rows); both attentions write their output as token rows, the output projection's input; each branch's
 * output product adds itself into the residual stream ({@link Gemm#accumulate}; a gated branch's through a copy of
 * its weight and bias with the gate folded in, when all batch entries share the timestep, as under guidance, else
 * the next norm kernel adds it), and the next branch's LayerNorm and modulation read the stream. Cross-attention
 * runs the dense attention kernel on keys and values padded to the queries' length (the kernel takes q, k, v of one
 * shape), with a work table that reads only the L text keys ({@link KvRangePlan#prefix}). The time embedding
 * (sinusoid on the host, its two linears, the projection to the six modulation chunks and every block's modulation
 * table) runs on the device in fp32, so a step waits for no host computation. Everything is queued on the context's
 * legacy default stream, which the host-to-device copies are ordered with.
 */
public final class GpuWanModel implements WanTransformer<GpuWanModel.Text>, AutoCloseable {

    private static final int SHIFT_1 = 0, SCALE_1 = 1, GATE_1 = 2, SHIFT_2 = 3, SCALE_2 = 4, GATE_2 = 5, CHUNKS = 6;

    /** Device weights of one block; linear weights [out, in] bf16, biases bf16, norm weights fp32. */
    private record Block(DeviceTensor qkvW, DeviceTensor qkvB, DeviceTensor selfOutW, DeviceTensor selfOutB,
                         DeviceTensor normQ, DeviceTensor normK, DeviceTensor crossNormW, DeviceTensor crossNormB,
                         DeviceTensor crossQW, DeviceTensor crossQB, DeviceTensor crossKW, DeviceTensor crossKB,
                         DeviceTensor crossVW, DeviceTensor crossVB, DeviceTensor crossOutW, DeviceTensor crossOutB,
                         DeviceTensor crossNormQ, DeviceTensor crossNormK, DeviceTensor ffnUpW, DeviceTensor ffnUpB,
                         DeviceTensor ffnDownW, DeviceTensor ffnDownB) {
    }

    /**
     * Text prepared on the device: every block's cross-attention keys (before their RMSNorm, which is applied when
     * they are laid out per head) and values, [B · L, dim] bf16. Close it to free that memory (the model closes the
     * ones still open).
     */
    public final class Text implements WanTransformer.Condition, AutoCloseable {
        private final DeviceScope scope;
        private final int batch;
        private final int length;
        private final DeviceTensor[] keys;
        private final DeviceTensor[] values;

        private Text(DeviceScope scope, int batch, int length, DeviceTensor[] keys, DeviceTensor[] values) {
            this.scope = scope;
            this.batch = batch;
            this.length = length;
            this.keys = keys;
            this.values = values;
        }

        @Override
        public int batch() {
            return batch;
        }

        public int length() {
            return length;
        }

        @Override
        public void close() {
            synchronized (GpuWanModel.this) {
                texts.remove(this);
            }
            scope.close();
        }
    }

    /** Activation buffers and per-geometry tables, reused while the batch, grid and attention tile stay the same. */
    private static final class Workspace implements AutoCloseable {
        final DeviceScope scope;
        final int batch;
        final Shape3 grid;
        final Shape3 tile;
        final int s;
        final DeviceBuffer rasterOfPosition;
        final DeviceTensor cos, sin;
        final DeviceTensor patchRows, x, h, qkv, q, k, v, rows, y, ffn, crossK, crossV, head, mod;
        /**
         * A gated branch's output weight and bias with the gate folded in (the weight buffer sized for the largest,
         * FFN down's), when every batch entry has one gate; the bias in the residual's type, which the product adds.
         */
        final DeviceBuffer gatedWeight;
        final DeviceTensor gatedBias;
        /** rows as [B, S, dim]: the attention kernels write their output there as token rows. */
        final DeviceTensor attended;
        /** The time embedding's inputs and intermediates: sinusoids [B, freqDim], [B, dim] twice, [B, 6·dim]. */
        final DeviceTensor timeIn, time1Out, temb, timeProjOut;
        /** Pinned staging of the sinusoids, and an event recorded once the stream has copied them out. */
        final MemorySegment timeHost;
        final CudaEvent timeCopied;
        KvRangePlan crossPlanHost;
        TileAttentionKernel.DevicePlan crossPlan;
        VsaWorkspace vsa;
        int vsaTopK;

        Workspace(CudaContext context, WanConfig c, DType residual, int batch, Shape3 grid, Shape3 tile,
                  int textLength) {
            this.scope = context.openScope();
            try {
                this.batch = batch;
                this.grid = grid;
                this.tile = tile;
                int[] raster = new TileGrid(grid, tile).tileOrderToRaster();
                this.s = raster.length;
                int rowCount = batch * s, dim = c.dim(), heads = c.heads(), d = c.headDim();
                rasterOfPosition = scope.allocate(4L * s);
                rasterOfPosition.copyFromHost(raster);
                RopeTable rope = new RopeTable(c, grid, raster);
                cos = DeviceTensor.upload(scope, new FloatTensor(new int[]{s, rope.pairs()}, rope.cosTable()), DType.F32);
                sin = DeviceTensor.upload(scope, new FloatTensor(new int[]{s, rope.pairs()}, rope.sinTable()), DType.F32);
                patchRows = scope.allocateTensor(DType.BF16, rowCount, c.patchInputs());
                x = scope.allocateTensor(residual, rowCount, dim);
                h = scope.allocateTensor(DType.BF16, rowCount, dim);
                qkv = scope.allocateTensor(DType.BF16, rowCount, 3 * dim);
                q = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                k = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                v = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                rows = scope.allocateTensor(DType.BF16, rowCount, dim);
                attended = new DeviceTensor(rows.buffer(), new int[]{batch, s, dim}, DType.BF16);
                y = scope.allocateTensor(DType.BF16, rowCount, dim);
                gatedWeight = scope.allocate(2L * dim * Math.max(dim, c.ffnDim()));
                gatedBias = scope.allocateTensor(residual, dim);
                ffn = scope.allocateTensor(DType.BF16, rowCount, c.ffnDim());
                // Text keys and values sit at the start of each plane; the rest stays zero, so the attention kernel's
                // loads past the L keys (masked) read finite values.
                crossK = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                crossV = scope.allocateTensor(DType.BF16, batch, heads, s, d);
                crossK.buffer().fill((byte) 0);
                crossV.buffer().fill((byte) 0);
                head = scope.allocateTensor(DType.F32, rowCount, c.patchOutputs());
                mod = scope.allocateTensor(DType.F32, batch, (c.layers() + 1) * CHUNKS, dim);
                timeHost = scope.allocatePinned(4L * batch * c.freqDim());
                timeCopied = scope.createEvent();
                timeCopied.record(context.defaultStream());   // so that the first forward's wait is well defined
                timeIn = scope.allocateTensor(DType.F32, batch, c.freqDim());
                time1Out = scope.allocateTensor(DType.F32, batch, dim);
                temb = scope.allocateTensor(DType.F32, batch, dim);
                timeProjOut = scope.allocateTensor(DType.F32, batch, CHUNKS * dim);
                crossPlanHost = KvRangePlan.prefix(s, heads, textLength);
                crossPlan = TileAttentionKernel.upload(crossPlanHost, scope);
            } catch (RuntimeException e) {
                scope.close();
                throw e;
            }
        }

        boolean fits(int batch, Shape3 grid, Shape3 tile) {
            return this.batch == batch && this.grid.equals(grid) && this.tile.equals(tile);
        }

        @Override
        public void close() {
            scope.close();
        }
    }

    private final WanConfig c;
    private final DType residual;
    private final GpuBackend backend;
    private final CudaContext context;
    private final CudaStream stream;
    private final Gemm gemm;
    private final DitKernels kernels;
    private final TileAttentionKernel crossKernel;
    private final VsaKernels vsaKernels;
    private final DeviceScope weightScope;
    private final DeviceTensor patchW, patchB, text1W, text1B, text2W, text2B, projOutW, projOutB;
    /** The time embedding in fp32, as the CPU model runs it: linears [out, in], the modulation tables. */
    private final DeviceTensor time1W, time1B, time2W, time2B, timeProjW, timeProjB, blockModulation, headModulation;
    private final Block[] blocks;
    private final Set<Text> texts = new LinkedHashSet<>();
    private Workspace workspace;
    private StepProfile profile;

    private GpuWanModel(WanWeights w, DType residual, GpuBackend backend, Gemm gemm) {
        this.c = w.config();
        this.residual = residual;
        this.backend = backend;
        this.context = backend.context();
        this.stream = context.defaultStream();
        this.gemm = gemm;
        KernelLibrary library = KernelLibrary.of(context);
        this.kernels = new DitKernels(library);
        // Cross-attention's items are short (512 text keys) and equal, the case where a persistent grid measured
        // faster in the forward checker (two KV blocks: 0.42 against 0.51 ms); in the DiT step the cross-attention
        // took 17.9-18.1 ms either way (docs/benchmarks.md, seventh session). 128-key blocks take the 512 keys in four
        // whole blocks: 16.0 against 16.9 ms with 192 (ninth session).
        this.crossKernel = new TileAttentionKernel(library, TileAttentionKernel.Path.AUTO, true, 128);
        this.vsaKernels = new VsaKernels(library);
        if (c.headDim() != 64 && c.headDim() != 128) {
            throw new IllegalArgumentException("the GPU attention kernels take head dim 64 or 128; " + c.name()
                    + " has " + c.headDim());
        }
        this.weightScope = context.openScope();
        try {
            patchW = bf16(w.patchEmbedding.weight(), c.dim(), c.patchInputs());
            patchB = residualVector(w.patchEmbedding.bias());
            text1W = bf16(w.text1.weight(), c.dim(), c.textDim());
            text1B = bf16(w.text1.bias(), c.dim());
            text2W = bf16(w.text2.weight(), c.dim(), c.dim());
            text2B = bf16(w.text2.bias(), c.dim());
            projOutW = bf16(w.projOut.weight(), c.patchOutputs(), c.dim());
            projOutB = f32(w.projOut.bias());
            time1W = f32(w.time1.weight(), c.dim(), c.freqDim());
            time1B = f32(w.time1.bias());
            time2W = f32(w.time2.weight(), c.dim(), c.dim());
            time2B = f32(w.time2.bias());
            timeProjW = f32(w.timeProj.weight(), CHUNKS * c.dim(), c.dim());
            timeProjB = f32(w.timeProj.bias());
            float[] tables = new float[c.layers() * CHUNKS * c.dim()];
            for (int i = 0; i < c.layers(); i++) {
                System.arraycopy(w.blocks[i].modulation(), 0, tables, i * CHUNKS * c.dim(), CHUNKS * c.dim());
            }
            blockModulation = f32(tables, c.layers(), CHUNKS, c.dim());
            headModulation = f32(w.headModulation, 2, c.dim());
            blocks = new Block[c.layers()];
            for (int i = 0; i < blocks.length; i++) {
                blocks[i] = upload(w.blocks[i]);
            }
            context.synchronize();
        } catch (RuntimeException e) {
            weightScope.close();
            throw e;
        }
    }

    /** {@link #open(WanWeights, DType)} with the residual stream in BF16. */
    public static GpuWanModel open(WanWeights weights) {
        return open(weights, DType.BF16);
    }

    /**
     * Uploads the weights to CUDA device 0 and opens the kernels and cuBLASLt.
     *
     * @param residual the residual stream's element type: BF16 (rounded after every add, as diffusers' Wan in bf16)
     *                 or F32
     * @throws tileattn.cuda.CudaUnavailableException when no usable GPU is present
     * @throws tileattn.blas.CublasLtUnavailableException when libcublasLt is not found
     */
    public static GpuWanModel open(WanWeights weights, DType residual) {
        if (residual != DType.BF16 && residual != DType.F32) {
            throw new IllegalArgumentException("the residual stream is BF16 or F32, got " + residual);
        }
        GpuBackend backend = GpuBackend.open();
        Gemm gemm = null;
        try {
            gemm = Gemm.open(backend.context());
            return new GpuWanModel(weights, residual, backend, gemm);
        } catch (RuntimeException e) {
            try {
                if (gemm != null) {
                    gemm.close();
                }
                backend.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    @Override
    public WanConfig config() {
        return c;
    }

    /** Where it runs, for logs. */
    public String describe() {
        return backend.describe() + "; " + gemm.describe() + "; residual stream " + residual;
    }

    /** The residual stream's element type. */
    public DType residual() {
        return residual;
    }

    public CudaContext context() {
        return context;
    }

    /** Records where the time of the following forwards goes (null: stop). */
    public synchronized void profile(StepProfile profile) {
        this.profile = profile;
    }

    private void mark(StepProfile.Part part) {
        if (profile != null) {
            profile.begin(part, stream);
        }
    }

    private DeviceTensor bf16(float[] values, int... shape) {
        return DeviceTensor.upload(weightScope, new FloatTensor(shape, values), DType.BF16);
    }

    /** A bias the products add to the residual stream, in its type (cuBLASLt adds a bias in the output's type). */
    private DeviceTensor residualVector(float[] values) {
        return residual == DType.F32 ? f32(values) : bf16(values, values.length);
    }

    private DeviceTensor f32(float[] values) {
        return f32(values, values.length);
    }

    private DeviceTensor f32(float[] values, int... shape) {
        return DeviceTensor.upload(weightScope, new FloatTensor(shape, values), DType.F32);
    }

    private Block upload(BlockWeights b) {
        int dim = c.dim();
        float[] qkvW = new float[3 * dim * dim], qkvB = new float[3 * dim];
        Linear[] parts = {b.selfQ(), b.selfK(), b.selfV()};
        for (int i = 0; i < 3; i++) {
            System.arraycopy(parts[i].weight(), 0, qkvW, i * dim * dim, dim * dim);
            System.arraycopy(parts[i].bias(), 0, qkvB, i * dim, dim);
        }
        return new Block(bf16(qkvW, 3 * dim, dim), bf16(qkvB, 3 * dim),
                bf16(b.selfOut().weight(), dim, dim), bf16(b.selfOut().bias(), dim),
                f32(b.selfNormQ()), f32(b.selfNormK()), f32(b.crossNormWeight()), f32(b.crossNormBias()),
                bf16(b.crossQ().weight(), dim, dim), bf16(b.crossQ().bias(), dim),
                bf16(b.crossK().weight(), dim, dim), bf16(b.crossK().bias(), dim),
                bf16(b.crossV().weight(), dim, dim), bf16(b.crossV().bias(), dim),
                bf16(b.crossOut().weight(), dim, dim), residualVector(b.crossOut().bias()),
                f32(b.crossNormQ()), f32(b.crossNormK()),
                bf16(b.ffnUp().weight(), c.ffnDim(), dim), bf16(b.ffnUp().bias(), c.ffnDim()),
                bf16(b.ffnDown().weight(), dim, c.ffnDim()), bf16(b.ffnDown().bias(), dim));
    }

    @Override
    public synchronized Text condition(FloatTensor context) {
        checkOpen();
        float[] padded = WanModel.paddedContext(c, context);
        int batch = context.dim(0), l = c.textLength(), rowCount = batch * l;
        DeviceScope scope = this.context.openScope();
        try {
            DeviceTensor in = DeviceTensor.upload(scope, new FloatTensor(new int[]{rowCount, c.textDim()}, padded),
                    DType.BF16);
            DeviceTensor h = scope.allocateTensor(DType.BF16, rowCount, c.dim());
            DeviceTensor text = scope.allocateTensor(DType.BF16, rowCount, c.dim());
            gemm.linear(in, text1W, text1B, h, Gemm.Epilogue.GELU_BIAS, stream);
            gemm.linear(h, text2W, text2B, text, Gemm.Epilogue.BIAS, stream);
            DeviceTensor[] keys = new DeviceTensor[c.layers()], values = new DeviceTensor[c.layers()];
            for (int i = 0; i < c.layers(); i++) {
                keys[i] = scope.allocateTensor(DType.BF16, rowCount, c.dim());
                values[i] = scope.allocateTensor(DType.BF16, rowCount, c.dim());
                gemm.linear(text, blocks[i].crossKW, blocks[i].crossKB, keys[i], Gemm.Epilogue.BIAS, stream);
                gemm.linear(text, blocks[i].crossVW, blocks[i].crossVB, values[i], Gemm.Epilogue.BIAS, stream);
            }
            stream.synchronize();
            Text t = new Text(scope, batch, l, keys, values);
            texts.add(t);
            return t;
        } catch (RuntimeException e) {
            scope.close();
            throw e;
        }
    }

    /** Host latent in, host velocity out: uploads, runs {@link #forwardDevice} and downloads. */
    @Override
    public synchronized FloatTensor forward(FloatTensor latent, float[] timesteps, Text text, SelfAttention attention) {
        checkOpen();
        if (latent.rank() != 5 || latent.dim(1) != c.inChannels()) {
            throw new IllegalArgumentException("latent must be [batch, " + c.inChannels() + ", T, H, W], got "
                    + latent.shapeString());
        }
        try (DeviceScope io = context.openScope()) {
            DeviceTensor in = DeviceTensor.upload(io, latent, DType.F32);
            DeviceTensor out = io.allocateTensor(DType.F32, outShape(latent.shape()));
            forwardDevice(in, timesteps, text, attention, out);
            stream.synchronize();
            return out.download();
        }
    }

    private int[] outShape(int[] latentShape) {
        int[] s = latentShape.clone();
        s[1] = c.outChannels();
        return s;
    }

    /**
     * One forward on device tensors: {@code latent} F32 [B, inChannels, T, H, W] → {@code velocity} F32 [B,
     * outChannels, T, H, W], queued on the context's default stream (read the result after synchronising it).
     */
    public synchronized void forwardDevice(DeviceTensor latent, float[] timesteps, Text text, SelfAttention attention,
                                           DeviceTensor velocity) {
        checkOpen();
        Objects.requireNonNull(attention, "attention");
        Objects.requireNonNull(text, "text");
        if (latent.rank() != 5 || latent.dim(1) != c.inChannels() || latent.dtype() != DType.F32) {
            throw new IllegalArgumentException("latent must be F32 [batch, " + c.inChannels() + ", T, H, W], got "
                    + latent.dtype() + " " + latent.shapeString());
        }
        if (velocity.dtype() != DType.F32 || !java.util.Arrays.equals(velocity.shape(), outShape(latent.shape()))) {
            throw new IllegalArgumentException("velocity must be F32 " + java.util.Arrays.toString(outShape(latent.shape()))
                    + ", got " + velocity.dtype() + " " + velocity.shapeString());
        }
        int batch = latent.dim(0);
        if (timesteps.length != batch || text.batch != batch) {
            throw new IllegalArgumentException("batch of " + batch + " latents needs as many timesteps and text "
                    + "conditions, got " + timesteps.length + " and " + text.batch);
        }
        if (!texts.contains(text)) {
            throw new IllegalArgumentException("this text condition was closed or made by another model");
        }
        Shape3 grid = c.tokenGrid(new Shape3(latent.dim(2), latent.dim(3), latent.dim(4)));
        if (grid.volume() < text.length) {
            throw new IllegalArgumentException("the GPU cross-attention pads the " + text.length + " text keys to the "
                    + "queries' length, so it needs at least as many video tokens; " + grid + " has " + grid.volume());
        }
        Workspace ws = workspace(batch, grid, attention.tile(), text.length);
        // The modulation depends on the timestep alone: equal timesteps give every batch entry the same gates.
        boolean oneGate = true;
        for (float t : timesteps) {
            oneGate &= Float.compare(t, timesteps[0]) == 0;
        }
        int s = ws.s, rowCount = batch * s, dim = c.dim();
        float eps = c.eps();

        mark(StepProfile.Part.TIME_EMBEDDING);
        timeEmbedding(timesteps, ws);
        mark(StepProfile.Part.PATCH_EMBED);
        kernels.patchify(latent, ws.rasterOfPosition, c.patch(), ws.patchRows, stream);
        gemm.linear(ws.patchRows, patchW, patchB, ws.x, Gemm.Epilogue.BIAS, stream);
        mark(StepProfile.Part.RESIDUAL_NORM);
        kernels.residualNorm(ws.x, null, ws.h, new DitKernels.Modulation(ws.mod, -1, SHIFT_1, SCALE_1), null, null, s,
                eps, stream);
        TileGrid tiles = new TileGrid(grid, attention.tile());
        float scale = CpuAttention.defaultScale(c.headDim());
        for (int layer = 0; layer < c.layers(); layer++) {
            Block b = blocks[layer];
            int base = layer * CHUNKS, next = (layer + 1) * CHUNKS;
            // self-attention
            mark(StepProfile.Part.QKV_GEMM);
            gemm.linear(ws.h, b.qkvW, b.qkvB, ws.qkv, Gemm.Epilogue.BIAS, stream);
            mark(StepProfile.Part.QK_NORM_ROPE);
            List<DitKernels.HeadsPart> qkvParts = List.of(new DitKernels.HeadsPart(ws.qkv, 0, b.normQ, true, ws.q),
                    new DitKernels.HeadsPart(ws.qkv, dim, b.normK, true, ws.k),
                    new DitKernels.HeadsPart(ws.qkv, 2 * dim, null, false, ws.v));
            VsaWorkspace vsa = attention instanceof SelfAttention.Vsa v ? vsaWorkspace(v, tiles, ws) : null;
            // With VSA's pooling fused in, v stays in the projection's rows: the fine kernel reads it there.
            boolean pooled = vsa != null && kernels.toHeadsPooled(qkvParts.subList(0, 2), ws.cos, ws.sin, s, eps, vsa,
                    stream);
            if (!pooled) {
                kernels.toHeads(qkvParts, ws.cos, ws.sin, s, eps, stream);
            }
            selfAttention(attention, layer, tiles, ws, scale, pooled);
            mark(StepProfile.Part.SELF_OUT_GEMM);
            DeviceTensor y = gatedBranch(ws.rows, b.selfOutW, b.selfOutB, base + GATE_1, oneGate, ws);
            mark(StepProfile.Part.RESIDUAL_NORM);
            kernels.residualNorm(ws.x, y, ws.h, new DitKernels.Modulation(ws.mod, base + GATE_1, -1, -1),
                    b.crossNormW, b.crossNormB, s, eps, stream);
            // cross-attention
            mark(StepProfile.Part.CROSS_Q_GEMM);
            gemm.linear(ws.h, b.crossQW, b.crossQB, ws.rows, Gemm.Epilogue.BIAS, stream);
            mark(StepProfile.Part.CROSS_Q_TO_HEADS);
            kernels.toHeads(ws.rows, 0, b.crossNormQ, null, null, ws.q, s, eps, stream);
            mark(StepProfile.Part.TEXT_TO_HEADS);
            kernels.toHeads(List.of(new DitKernels.HeadsPart(text.keys[layer], 0, b.crossNormK, false, ws.crossK),
                    new DitKernels.HeadsPart(text.values[layer], 0, null, false, ws.crossV)), null, null, text.length,
                    eps, stream);
            mark(StepProfile.Part.CROSS_ATTENTION);
            crossKernel.forward(ws.q, ws.crossK, ws.crossV, ws.attended, null, ws.crossPlan, scale, stream);
            mark(StepProfile.Part.CROSS_OUT_GEMM);
            gemm.accumulate(ws.rows, b.crossOutW, b.crossOutB, ws.x, stream);
            mark(StepProfile.Part.RESIDUAL_NORM);
            kernels.residualNorm(ws.x, null, ws.h, new DitKernels.Modulation(ws.mod, -1, base + SHIFT_2, base + SCALE_2),
                    null, null, s, eps, stream);
            // feed-forward; its residual add runs with the next block's (or the head's) norm and modulation
            // cuBLASLt's GELU epilogue is the tanh form (GemmGpuTest tells it from the erf form in fp32), so the
            // FFN's activation never makes a pass of its own over the [rows, ffnDim] buffer.
            mark(StepProfile.Part.FFN_UP_GEMM);
            gemm.linear(ws.h, b.ffnUpW, b.ffnUpB, ws.ffn, Gemm.Epilogue.GELU_BIAS, stream);
            mark(StepProfile.Part.FFN_DOWN_GEMM);
            y = gatedBranch(ws.ffn, b.ffnDownW, b.ffnDownB, base + GATE_2, oneGate, ws);
            mark(StepProfile.Part.RESIDUAL_NORM);
            kernels.residualNorm(ws.x, y, ws.h, new DitKernels.Modulation(ws.mod, base + GATE_2, next + SHIFT_1,
                    next + SCALE_1), null, null, s, eps, stream);
        }
        mark(StepProfile.Part.PATCH_EMBED);
        gemm.linear(ws.h, projOutW, projOutB, ws.head, Gemm.Epilogue.BIAS, stream);
        kernels.unpatchify(ws.head, ws.rasterOfPosition, c.patch(), velocity, stream);
        if (profile != null) {
            profile.end(stream);
        }
    }

    /**
     * The end of a gated branch, {@code x += gate · (in · wᵀ + bias)} with the gate chunk {@code gateChunk} of the
     * modulation. When every batch entry has that gate ({@code oneGate}: equal timesteps, as under guidance) the
     * gate is folded into a copy of w and bias and the product adds itself into x; returns null, and the next norm
     * reads x alone (residualNorm adds nothing, gate or not, without y). Otherwise the product goes to ws.y, which is
     * returned for the next norm to add with the gate.
     */
    private DeviceTensor gatedBranch(DeviceTensor in, DeviceTensor w, DeviceTensor bias, int gateChunk, boolean oneGate,
                                     Workspace ws) {
        if (!oneGate) {
            gemm.linear(in, w, bias, ws.y, Gemm.Epilogue.BIAS, stream);
            return ws.y;
        }
        DitKernels.Modulation gate = new DitKernels.Modulation(ws.mod, gateChunk, -1, -1);
        DeviceTensor gatedW = new DeviceTensor(ws.gatedWeight.slice(0, w.bytes()), w.shape(), DType.BF16);
        kernels.gateRows(gate, w, gatedW, stream);
        kernels.gateRows(gate, bias, ws.gatedBias, stream);
        gemm.accumulate(in, gatedW, ws.gatedBias, ws.x, stream);
        return null;
    }

    /**
     * Self-attention of ws.q, ws.k, ws.v into ws.attended (token rows); {@code pooled}: VSA's pooled q and k were
     * written with q and k, and v was left in ws.qkv's rows.
     */
    private void selfAttention(SelfAttention attention, int layer, TileGrid tiles, Workspace ws, float scale,
                               boolean pooled) {
        switch (attention) {
            case SelfAttention.Dense dense -> {
                mark(StepProfile.Part.SELF_ATTENTION);
                backend.attend(ws.q, ws.k, ws.v, ws.attended, AttentionSpec.dense(), scale, stream);
            }
            case SelfAttention.Sta sta -> {
                mark(StepProfile.Part.SELF_ATTENTION);
                Window[] windows = CpuSelfAttention.windows(sta, layer, c.heads(), tiles);
                backend.attend(ws.q, ws.k, ws.v, ws.attended,
                        AttentionSpec.Sta.perHead(new TokenLayout(tiles, 0), windows), scale, stream);
            }
            case SelfAttention.Vsa vsa -> {
                VsaWorkspace vws = vsaWorkspace(vsa, tiles, ws);
                if (pooled) {
                    mark(StepProfile.Part.VSA_SELECTION);
                    vsaKernels.selectPooled(vws, scale, stream);
                    mark(StepProfile.Part.SELF_ATTENTION);
                    vsaKernels.forwardSelected(ws.q, ws.k, new TokenColumns(ws.qkv, 2 * c.dim()), ws.attended, vws,
                            scale, stream);
                } else {
                    mark(StepProfile.Part.SELF_ATTENTION);
                    vsaKernels.forwardFine(ws.q, ws.k, ws.v, ws.attended, vws, scale, stream);
                }
            }
        }
    }

    /** The selection of the last VSA layer run (null before any), for diagnostics such as the tests' selection statistics. */
    synchronized TileLists[] lastVsaSelection() {
        checkOpen();
        stream.synchronize();
        return workspace == null || workspace.vsa == null ? null : workspace.vsa.downloadSelection();
    }

    private VsaWorkspace vsaWorkspace(SelfAttention.Vsa vsa, TileGrid tiles, Workspace ws) {
        int topK = vsa.keep(tiles.tileCount());
        if (ws.vsa == null || ws.vsaTopK != topK) {
            VsaPlan plan = vsaKernels.plan(tiles, ws.batch, c.heads(), topK, ws.scope);
            ws.vsa = VsaWorkspace.allocate(plan, DType.BF16, c.headDim(), false, ws.scope);
            ws.vsaTopK = topK;
        }
        return ws.vsa;
    }

    /**
     * Queues the time embedding: the sinusoids (computed here as the CPU model does, in double) go up, then the two
     * time linears, the projection to six chunks and the modulation of every block and of the head run on the
     * device into {@code ws.mod} ([B, (layers + 1)·6, dim]: each block's table + projection, then the head's (shift,
     * scale) + temb).
     */
    private void timeEmbedding(float[] timesteps, Workspace ws) {
        int f = c.freqDim();
        ws.timeCopied.synchronize();   // the previous forward's copy has left the pinned buffer
        for (int b = 0; b < timesteps.length; b++) {
            MemorySegment.copy(TimestepEmbedding.sinusoid(timesteps[b], f), 0, ws.timeHost, ValueLayout.JAVA_FLOAT,
                    4L * b * f, f);
        }
        ws.timeIn.buffer().copyFromHostAsync(ws.timeHost, stream);
        ws.timeCopied.record(stream);
        kernels.smallLinear(ws.timeIn, time1W, time1B, ws.time1Out, false, stream);
        kernels.smallLinear(ws.time1Out, time2W, time2B, ws.temb, true, stream);
        kernels.smallLinear(ws.temb, timeProjW, timeProjB, ws.timeProjOut, true, stream);
        kernels.modulation(blockModulation, headModulation, ws.timeProjOut, ws.temb, ws.mod, stream);
    }

    private Workspace workspace(int batch, Shape3 grid, Shape3 tile, int textLength) {
        if (workspace != null && workspace.fits(batch, grid, tile) && workspace.crossPlanHost.rangeEnd(0, 0) == textLength) {
            return workspace;
        }
        if (workspace != null) {
            workspace.close();
            workspace = null;
        }
        workspace = new Workspace(context, c, residual, batch, grid, tile, textLength);
        return workspace;
    }

    private boolean open = true;

    private void checkOpen() {
        if (!open) {
            throw new IllegalStateException("this GpuWanModel was closed");
        }
    }

    /** Frees the text conditions still open, the activations, the weights, cuBLASLt and the attention backend. */
    @Override
    public synchronized void close() {
        if (!open) {
            return;
        }
        open = false;
        RuntimeException failure = null;
        List<AutoCloseable> all = new ArrayList<>(texts);
        texts.clear();
        if (workspace != null) {
            all.add(workspace);
        }
        all.add(weightScope);
        all.add(gemm);
        all.add(backend);
        for (AutoCloseable a : all) {
            try {
                if (a instanceof Text t) {
                    t.scope.close();
                } else {
                    a.close();
                }
            } catch (Exception e) {
                if (failure == null) {
                    failure = e instanceof RuntimeException r ? r : new IllegalStateException(e);
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }
}
