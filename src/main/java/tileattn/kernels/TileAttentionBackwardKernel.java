package tileattn.kernels;

import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.KernelArgs;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * Backward of the block-sparse attention forward ({@link TileAttentionKernel}) on the GPU, tile_attention_bwd.cu:
 * STA, dense, or any pair of plans. From the forward's inputs, its output {@code o} and log-sum-exp, and the
 * output gradient {@code dO}, it writes {@code dq, dk, dv}, all [B, heads, S, d] in tile order. bf16 or fp16 in
 * and out (the gradients take the inputs' type, rounded once from fp32 accumulators), d = 64 or 128; tiles outside
 * a window are skipped as in the forward. Every output element is written by exactly one thread block, so
 * results do not depend on scheduling. Portable mma.sync kernels: compute capability 8.0 and newer; at d = 128
 * the 128-row kernels need 129 KiB of shared memory per block (A100, H100 and newer; not the 99 KiB parts). Each
 * kernel runs with 64-row blocks (its 64-row entry point) where {@link BlockRows} finds they compute fewer rows.
 * {@link Path#HOPPER}, the default on compute capability 9.0, runs the dK/dV and dQ kernels of
 * tile_attention_bwd_sm90.cu (wgmma, same arguments) instead; {@link Path#HOPPER_FUSED} computes dQ inside the
 * dK/dV kernel, added into an fp32 accumulator in the workspace ({@link #workspaceBytesFor}).
 */
public final class TileAttentionBackwardKernel {

    /** Which dK/dV and dQ kernels run; the prep kernel is the portable one on both paths. */
    public enum Path {
        /** mma.sync kernels; compute capability 8.0 and newer. */
        PORTABLE,
        /** wgmma kernels (sm_90a code), compute capability 9.0 only: 1.5-1.6x faster than PORTABLE there. */
        HOPPER,
        /**
         * wgmma kernels with dQ computed in the dK/dV kernel (five block products instead of seven) and added into
         * an fp32 accumulator with reductions in L2, then scaled and rounded into dq; compute capability 9.0 only.
         * The order of the additions depends on scheduling, so dq is not bitwise reproducible between runs (dk and
         * dv are), and the workspace grows by 4 bytes per element of q.
         */
        HOPPER_FUSED;

        /** HOPPER on compute capability 9.0, PORTABLE elsewhere. */
        public static Path fastestFor(KernelLibrary library) {
            return library.context().device().computeCapabilityNumber() == 90 ? HOPPER : PORTABLE;
        }
    }

    private static final String FAMILY = "tile_attention_bwd";
    private static final String HOPPER_FAMILY = "tile_attention_bwd_sm90";
    private static final int THREADS = 256;
    private static final int MAX_GRID_YZ = 65535;
    /** The prep kernel's grid-stride loop: enough blocks to fill every SM several times over, no more. */
    private static final int PREP_BLOCKS_PER_SM = 8;

    private final KernelLibrary library;
    private final Path path;

    public TileAttentionBackwardKernel(KernelLibrary library) {
        this(library, Path.fastestFor(library));
    }

    public TileAttentionBackwardKernel(KernelLibrary library, Path path) {
        this.library = library;
        this.path = path;
        if (path != Path.PORTABLE && library.context().device().computeCapabilityNumber() != 90) {
            throw new IllegalArgumentException("the " + path + " attention backward needs compute capability 9.0; "
                    + library.context().device().name() + " has " + library.context().device().computeCapability());
        }
    }

    public Path path() {
        return path;
    }

    /**
     * Both plans' tables in device memory, freed with the scope they were uploaded into: the forward's plan as
     * given ({@code queries}), the dQ kernel's (its lists with the backward's query blocks; the same object when
     * the block sizes agree) and the dK/dV kernel's (KV blocks of the backward's size).
     */
    public record DevicePlan(TileAttentionKernel.DevicePlan queries, TileAttentionKernel.DevicePlan gradientQueries,
                             QueryRangePlan keys, DeviceBuffer keyBlocks, DeviceBuffer keyListOf,
                             DeviceBuffer keyRangeOffsets, DeviceBuffer keyRanges) {
    }

    /**
     * Uploads the forward's plan (query blocks and their KV ranges, for the forward and dq) and its transpose (KV
     * blocks and the query ranges that read them, for dk and dv); both must describe the same heads and sequence.
     * Each backward kernel gets the block size {@link BlockRows#fewestComputed} picks for its table.
     */
    public static DevicePlan upload(KvRangePlan queries, QueryRangePlan keys, DeviceScope scope) {
        return upload(queries, keys, BlockRows.fewestComputed(queries.segmentLengths()),
                BlockRows.fewestComputed(keys.segmentLengths()), scope);
    }

    /** As {@link #upload(KvRangePlan, QueryRangePlan, DeviceScope)} with both backward kernels' block rows given: 64 or 128. */
    static DevicePlan upload(KvRangePlan queries, QueryRangePlan keys, int dqRows, int dkdvRows, DeviceScope scope) {
        if (queries.heads() != keys.heads() || queries.sequenceLength() != keys.sequenceLength()) {
            throw new IllegalArgumentException("the query plan is for " + queries.heads() + " heads and S = "
                    + queries.sequenceLength() + " but the key plan for " + keys.heads() + " heads and S = "
                    + keys.sequenceLength());
        }
        BlockRows.check(dqRows);
        BlockRows.check(dkdvRows);
        QueryRangePlan blockedKeys = keys.withBlockRows(dkdvRows);
        DeviceBuffer[] t = TileAttentionKernel.uploadTables(scope, blockedKeys.blockTable(), blockedKeys.listOfTable(),
                blockedKeys.rangeOffsetTable(), blockedKeys.rangeTable());
        TileAttentionKernel.DevicePlan forward = TileAttentionKernel.upload(queries, scope);
        TileAttentionKernel.DevicePlan gradient = forward;
        if (dqRows != queries.blockRows()) {  // same lists, blocks of the dQ kernel's size
            KvRangePlan blocked = queries.withBlockRows(dqRows);
            DeviceBuffer blocks = TileAttentionKernel.uploadTables(scope, blocked.blockTable())[0];
            gradient = new TileAttentionKernel.DevicePlan(blocked, blocks, forward.listOf(), forward.rangeOffsets(),
                    forward.ranges());
        }
        return new DevicePlan(forward, gradient, blockedKeys, t[0], t[1], t[2], t[3]);
    }

    /**
     * Bytes of scratch {@link #backward} needs on the PORTABLE and HOPPER paths: two fp32 values per row (delta =
     * rowsum(dO ⊙ o), lse in log2). {@link #workspaceBytesFor} covers every path.
     */
    public static long workspaceBytes(int batch, int heads, int sequenceLength) {
        return Math.multiplyExact(8L * batch, Math.multiplyExact((long) heads, sequenceLength));
    }

    /** Bytes of scratch {@link #backward} needs on this kernel's path; HOPPER_FUSED adds dQ's fp32 accumulator. */
    public long workspaceBytesFor(int batch, int heads, int sequenceLength, int d) {
        long rowBytes = workspaceBytes(batch, heads, sequenceLength);
        if (path != Path.HOPPER_FUSED) {
            return rowBytes;
        }
        return Math.addExact(accumulatorOffset(rowBytes), Math.multiplyExact(rowBytes / 2, d));
    }

    /** Where dQ's accumulator starts in the workspace: after the row statistics, 256-byte aligned. */
    private static long accumulatorOffset(long rowBytes) {
        return (rowBytes + 255) / 256 * 256;
    }

    /**
     * STA backward, tokens in tile order. Builds and uploads both plans and the workspace into a temporary scope,
     * so it returns only once the kernels have finished; a training loop that runs many steps with one layout
     * should {@link #upload} the plans once and call {@link #backward}.
     */
    public void sta(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse, DeviceTensor dO,
                    DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, TokenLayout layout, Window[] windowsPerHead,
                    float scale, CudaStream stream) {
        KvRangePlan queries = KvRangePlan.sta(layout, windowsPerHead);
        QueryRangePlan keys = QueryRangePlan.sta(layout, windowsPerHead);
        run(q, k, v, o, lse, dO, dq, dk, dv, queries, keys, scale, stream);
    }

    /** Dense backward over any S; returns once the kernels have finished (see {@link #sta}). */
    public void dense(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse, DeviceTensor dO,
                      DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, float scale, CudaStream stream) {
        checkRank(q, "q");
        int seq = q.dim(2), heads = q.dim(1);
        run(q, k, v, o, lse, dO, dq, dk, dv, KvRangePlan.dense(seq, heads), QueryRangePlan.dense(seq, heads), scale, stream);
    }

    private void run(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse, DeviceTensor dO,
                     DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, KvRangePlan queries, QueryRangePlan keys,
                     float scale, CudaStream stream) {
        checkRank(q, "q");
        try (DeviceScope scope = library.context().openScope()) {
            DeviceBuffer workspace = scope.allocate(workspaceBytesFor(q.dim(0), q.dim(1), q.dim(2), q.dim(3)));
            backward(q, k, v, o, lse, dO, dq, dk, dv, upload(queries, keys, scope), workspace, scale, stream);
            stream.synchronize();
        }
    }

    /**
     * Queues the backward on {@code stream}: prep (delta and lse in log2 into {@code workspace}), then dk/dv, then
     * dq (HOPPER_FUSED: the accumulator zeroed, dk/dv/dq in one kernel, then dq from the accumulator). The plan's
     * buffers and the workspace must outlive the kernels.
     *
     * @param lse       the forward's fp32 [B, heads, S] natural-log log-sum-exp
     * @param workspace at least {@link #workspaceBytesFor} bytes, 4-byte aligned (16-byte on HOPPER_FUSED),
     *                  overlapping no tensor
     */
    public void backward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse,
                         DeviceTensor dO, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, DevicePlan plan,
                         DeviceBuffer workspace, float scale, CudaStream stream) {
        DeviceTensor[] tensors = {q, k, v, o, dO, dq, dk, dv};
        String[] names = {"q", "k", "v", "o", "dO", "dq", "dk", "dv"};
        for (int i = 0; i < tensors.length; i++) {
            checkRank(tensors[i], names[i]);
            if (!tensors[i].sameShape(q)) {
                throw new IllegalArgumentException("q is " + q.shapeString() + " but " + names[i] + " is "
                        + tensors[i].shapeString() + "; q, k, v, o, dO and the gradients must have one shape");
            }
            if (tensors[i].dtype() != q.dtype()) {
                throw new IllegalArgumentException("q is " + q.dtype() + " but " + names[i] + " is " + tensors[i].dtype()
                        + "; q, k, v, o, dO and the gradients must have one element type");
            }
        }
        if (q.dtype() != DType.BF16 && q.dtype() != DType.F16) {
            throw new IllegalArgumentException("attention runs on BF16 or F16 tensors, got " + q.dtype());
        }
        int batch = q.dim(0), heads = q.dim(1), seq = q.dim(2), d = q.dim(3);
        if (d != 64 && d != 128) {
            throw new IllegalArgumentException("head dim must be 64 or 128, got " + d);
        }
        if (batch > MAX_GRID_YZ || heads > MAX_GRID_YZ) {
            throw new IllegalArgumentException("B = " + batch + " and heads = " + heads + " must each be at most " + MAX_GRID_YZ);
        }
        KvRangePlan queries = plan.queries().plan();
        if (queries.sequenceLength() != seq || queries.heads() != heads) {
            throw new IllegalArgumentException("tensors have " + heads + " heads and S = " + seq + " but the plan is for "
                    + queries.heads() + " heads and S = " + queries.sequenceLength());
        }
        if (!(scale > 0) || !Float.isFinite(scale)) {
            throw new IllegalArgumentException("scale must be positive and finite, got " + scale);
        }
        if (lse == null || lse.dtype() != DType.F32 || lse.rank() != 3 || lse.dim(0) != batch || lse.dim(1) != heads
                || lse.dim(2) != seq) {
            throw new IllegalArgumentException("lse must be the forward's F32 [" + batch + ", " + heads + ", " + seq
                    + "], got " + (lse == null ? "none" : lse.dtype() + " " + lse.shapeString()));
        }
        long need = workspaceBytesFor(batch, heads, seq, d);
        if (workspace == null || workspace.bytes() < need) {
            throw new IllegalArgumentException("the workspace must hold " + need + " bytes, got "
                    + (workspace == null ? "none" : workspace.bytes()));
        }
        boolean fused = path == Path.HOPPER_FUSED;
        if (workspace.address() % (fused ? 16 : 4) != 0) {
            throw new IllegalArgumentException("the workspace must be " + (fused ? 16 : 4) + "-byte aligned, got "
                    + workspace);
        }
        for (int i = 0; i < 5; i++) {
            if (tensors[i].buffer().address() % 16 != 0) {
                throw new IllegalArgumentException(names[i] + " must be 16-byte aligned (the kernels read rows in "
                        + "16-byte pieces), got " + tensors[i]);
            }
        }
        for (int i = 5; i < 8; i++) {
            if (tensors[i].buffer().address() % 4 != 0) {
                throw new IllegalArgumentException(names[i] + " must be 4-byte aligned, got " + tensors[i]);
            }
            for (int j = 0; j < tensors.length; j++) {
                if (j != i && tensors[i].buffer().overlaps(tensors[j].buffer())) {
                    throw new IllegalArgumentException(names[i] + " overlaps " + names[j]
                            + "; each gradient needs memory of its own");
                }
            }
            if (tensors[i].buffer().overlaps(lse.buffer()) || tensors[i].buffer().overlaps(workspace)) {
                throw new IllegalArgumentException(names[i] + " overlaps lse or the workspace");
            }
        }
        if (fused && dq.buffer().address() % 8 != 0) {
            throw new IllegalArgumentException("dq must be 8-byte aligned on the HOPPER_FUSED path (its conversion "
                    + "writes four elements at a time), got " + dq);
        }
        if (workspace.overlaps(lse.buffer())) {
            throw new IllegalArgumentException("the workspace overlaps lse");
        }
        for (int i = 0; i < 5; i++) {
            if (workspace.overlaps(tensors[i].buffer())) {
                throw new IllegalArgumentException("the workspace overlaps " + names[i]);
            }
        }
        Kernels.checkContext(library, stream, q, k, v, o, dO, dq, dk, dv, lse);
        if (!workspace.scope().context().sameContextAs(library.context())) {
            throw new IllegalArgumentException("the workspace belongs to another CUDA context than the kernels");
        }

        String suffix = (q.dtype() == DType.BF16 ? "bf16" : "f16") + "_d" + d;
        long rows = (long) batch * heads * seq;
        DeviceBuffer delta = workspace.slice(0, 4 * rows);
        DeviceBuffer lse2 = workspace.slice(4 * rows, 4 * rows);
        float scaleLog2 = (float) (scale / Math.log(2));

        long chunks = rows * (d / 8);
        long maxBlocks = (long) PREP_BLOCKS_PER_SM * library.context().device().multiprocessors();
        int prepBlocks = (int) Math.max(1, Math.min((chunks + THREADS - 1) / THREADS, maxBlocks));
        library.function(FAMILY, "tileattn_tile_attention_bwd_prep_" + suffix).launch(Dim3.of(prepBlocks),
                Dim3.of(THREADS), 0, stream,
                KernelArgs.of().pointer(o).pointer(dO).pointer(lse).pointer(delta).pointer(lse2).i64(rows));

        QueryRangePlan keys = plan.keys();
        KernelShape kv = KernelShape.dkdv(path, keys.blockRows(), d);
        KernelArgs kvArgs = KernelArgs.of().pointer(q).pointer(k).pointer(v).pointer(dO).pointer(lse2).pointer(delta)
                .pointer(dk).pointer(dv);
        DeviceBuffer accumulator = null;
        if (fused) {
            long offset = accumulatorOffset(8 * rows);
            accumulator = workspace.slice(offset, 4 * rows * d);
            accumulator.fillAsync(0, stream);
            kvArgs.pointer(accumulator);
        } else {
            kvArgs.i64(0).i64(0);  // dkAdd, dvAdd: nothing to add to the gradient rows
        }
        library.function(kv.family(), kv.function(fused ? "dkdvq" : "dkdv", suffix)).launch(
                new Dim3(keys.blockCount(), heads, batch), Dim3.of(kv.threads()), kv.sharedBytes(), stream,
                kvArgs.pointer(plan.keyBlocks()).pointer(plan.keyListOf()).pointer(plan.keyRangeOffsets())
                        .pointer(plan.keyRanges())
                        .i32(keys.slots()).i32(heads).i32(seq).f32(scaleLog2).f32(scale));
        if (fused) {
            long quads = rows * d / 4;
            int convertBlocks = (int) Math.max(1, Math.min((quads + THREADS - 1) / THREADS, maxBlocks));
            library.function(HOPPER_FAMILY, "tileattn_" + HOPPER_FAMILY + "_dq_convert_"
                    + (q.dtype() == DType.BF16 ? "bf16" : "f16")).launch(Dim3.of(convertBlocks), Dim3.of(THREADS), 0,
                    stream, KernelArgs.of().pointer(accumulator).pointer(dq).i64(quads).f32(scale));
            return;
        }
        TileAttentionKernel.DevicePlan qp = plan.gradientQueries();
        KernelShape qs = KernelShape.dq(path, qp.plan().blockRows(), d);
        library.function(qs.family(), qs.function("dq", suffix)).launch(
                new Dim3(qp.plan().blockCount(), heads, batch), Dim3.of(qs.threads()), qs.sharedBytes(), stream,
                KernelArgs.of().pointer(q).pointer(k).pointer(v).pointer(dO).pointer(lse2).pointer(delta).pointer(dq)
                        .i64(0 /* dqAdd: none */).pointer(qp.queryBlocks()).pointer(qp.listOf()).pointer(qp.rangeOffsets())
                        .pointer(qp.ranges())
                        .i32(queries.slots()).i32(heads).i32(seq).f32(scaleLog2).f32(scale));
    }

    /**
     * Family, entry-point prefix, threads and dynamic shared memory of a dK/dV or dQ kernel for blocks of
     * {@code rows} (64 or 128). The sizes follow the kernels' configs: portable dK/dV holds K, V and two stages of
     * Q, dO (64 rows), lse2 and delta; portable dQ holds Q, dO and two stages of K, V (64 keys); the Hopper kernels
     * hold the same plus 1 KiB to align their swizzled tiles (dK/dV also its row statistics), except that at 128 rows
     * (tile_attention_bwd_sm90.cu's Sm90BwdKvEntry / Sm90BwdQEntry) dK/dV keeps three stages and dQ steps over 128 keys.
     */
    record KernelShape(String family, String prefix, int threads, int sharedBytes) {
        static KernelShape dkdv(Path path, int rows, int d) {
            boolean small = rows == BlockRows.SMALL;
            if (path == Path.HOPPER_FUSED) {  // Sm90BwdFusedShipped: the same plus dS^T (rows x 64 queries)
                return new KernelShape(HOPPER_FAMILY, small ? "r64_" : "", 2 * rows, (4 * rows + 512) * d + 128 * rows + 2048);
            }
            if (path == Path.HOPPER) {  // Sm90BwdKvEntry: three stages of Q and dO at 128 rows
                return small ? new KernelShape(HOPPER_FAMILY, "r64_", 128, 768 * d + 2048)
                        : new KernelShape(HOPPER_FAMILY, "", 256, 1280 * d + 2560);
            }
            return small ? new KernelShape(FAMILY, "bm64_", 128, 768 * d + 1024)
                    : new KernelShape(FAMILY, "", THREADS, 1024 * d + 1024);
        }

        static KernelShape dq(Path path, int rows, int d) {
            boolean small = rows == BlockRows.SMALL;
            if (path != Path.PORTABLE) {  // Sm90BwdQEntry: 128-key steps at 128 rows
                return small ? new KernelShape(HOPPER_FAMILY, "r64_", 128, 768 * d + 1024)
                        : new KernelShape(HOPPER_FAMILY, "", 256, 1536 * d + 1024);
            }
            return small ? new KernelShape(FAMILY, "bm64_", 128, 768 * d) : new KernelShape(FAMILY, "", THREADS, 1024 * d);
        }

        /** The entry point for {@code kernel} ("dkdv", "dkdvq" or "dq") and a type/d suffix such as "bf16_d128". */
        String function(String kernel, String suffix) {
            return "tileattn_" + family + "_" + kernel + "_" + prefix + suffix;
        }
    }

    private static void checkRank(DeviceTensor t, String name) {
        if (t == null) {
            throw new IllegalArgumentException(name + " is missing");
        }
        if (t.rank() != 4) {
            throw new IllegalArgumentException(name + " must be [B, heads, S, d], got " + t.shapeString());
        }
    }
}
