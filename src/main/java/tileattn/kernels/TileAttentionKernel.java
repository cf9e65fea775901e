package tileattn.kernels;

import java.lang.foreign.Arena;

import tileattn.cuda.CudaDevice;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.KernelArgs;
import tileattn.cuda.TensorMap;
import tileattn.layout.TokenLayout;
import tileattn.mask.Window;

/**
 * Block-sparse attention forward on the GPU over tile-ordered [B, heads, S, d] tensors: STA, dense, or any
 * {@link KvRangePlan}. bf16 or fp16 in and out, fp32 accumulation, d = 64 or 128, optional log-sum-exp output
 * (fp32 [B, heads, S], natural log). The output o is either laid out like q or given as token rows [B, S, heads·d]
 * (rank 3), the matrix that an output projection reads, so that no pass moves the heads back to rows. Three kernels
 * read one work plan: tile_attention_sm90_ws.cu (warp-specialized
 * wgmma fed by the tensor copy engine, the fastest) on compute capability 9.0, tile_attention.cu
 * (mma.sync) elsewhere, and tile_attention_sm90.cu (wgmma without warp specialization), which serves VSA's 64-row
 * blocks; {@link Path} can force any.
 */
public final class TileAttentionKernel {

    /** Which kernel runs. */
    public enum Path {
        /** The warp-specialized Hopper kernel on compute capability 9.0, the portable one elsewhere. */
        AUTO,
        /** mma.sync kernel; runs on compute capability 8.0 and newer. */
        PORTABLE,
        /** wgmma kernel, all warps loading and computing; its sm_90a code runs on compute capability 9.0 only. */
        HOPPER,
        /**
         * wgmma kernel whose producer thread feeds two consumer warpgroups through an mbarrier ring by tensor copies,
         * sm_90a code, compute capability 9.0 only.
         */
        HOPPER_WARP_SPECIALIZED;

        boolean needsHopper() {
            return this == HOPPER || this == HOPPER_WARP_SPECIALIZED;
        }
    }

    private static final String PORTABLE_FAMILY = "tile_attention";
    private static final String HOPPER_FAMILY = "tile_attention_sm90";
    private static final String WARP_SPECIALIZED_FAMILY = "tile_attention_sm90_ws";
    private static final int MAX_GRID_YZ = 65535;

    private final KernelLibrary library;
    private final Path path;
    private final boolean persistent;
    private final int keyBlock;

    public TileAttentionKernel(KernelLibrary library) {
        this(library, Path.AUTO);
    }

    public TileAttentionKernel(KernelLibrary library, Path path) {
        this(library, path, false);
    }

    /**
     * @param persistent on the warp-specialized path, launch one block per multiprocessor, each walking work items,
     *                   so that a block loads its next item's Q and first keys while it finishes the previous one:
     *                   faster where the items are short and equal (Wan STA 1×1×1, B = 2: 0.42 against 0.51 ms, such
     *                   as cross-attention to a few hundred text keys), slower where they differ in cost (text rows:
     *                   27.7 against 24.2 ms), which the hardware's block scheduler balances better than a fixed walk
     *                   (docs/benchmarks.md, 2026-12-06). Other paths ignore it.
     */
    public TileAttentionKernel(KernelLibrary library, Path path, boolean persistent) {
        this(library, path, persistent, 192);
    }

    /**
     * @param keyBlock keys per block of the warp-specialized path: 192 (the default, fastest over long lists), or
     *                 128 for lists of a few hundred keys that 192 does not divide (512 text keys: four whole blocks
     *                 instead of three with 64 masked keys). Other paths ignore it.
     */
    public TileAttentionKernel(KernelLibrary library, Path path, boolean persistent, int keyBlock) {
        if (keyBlock != 128 && keyBlock != 192) {
            throw new IllegalArgumentException("key blocks of " + keyBlock + " keys: the warp-specialized kernel takes 128 or 192");
        }
        this.library = library;
        this.persistent = persistent;
        this.keyBlock = keyBlock;
        CudaDevice device = library.context().device();
        boolean hopper = device.computeCapabilityNumber() == 90;
        if (path.needsHopper() && !hopper) {
            throw new IllegalArgumentException("the " + path + " attention kernel needs compute capability 9.0; "
                    + device.name() + " has " + device.computeCapability());
        }
        this.path = path == Path.AUTO ? (hopper ? Path.HOPPER_WARP_SPECIALIZED : Path.PORTABLE) : path;
    }

    /** The kernel this instance launches (never AUTO). */
    public Path path() {
        return path;
    }

    @Override
    public String toString() {
        return path + (path != Path.HOPPER_WARP_SPECIALIZED ? "" : (persistent ? " (persistent grid, " : " (")
                + keyBlock + "-key blocks)");
    }

    /** A plan's tables in device memory, freed with the scope they were uploaded into. */
    public record DevicePlan(KvRangePlan plan, DeviceBuffer queryBlocks, DeviceBuffer listOf, DeviceBuffer rangeOffsets,
                             DeviceBuffer ranges) {
    }

    public static DevicePlan upload(KvRangePlan plan, DeviceScope scope) {
        DeviceBuffer[] t = uploadTables(scope, plan.blockTable(), plan.listOfTable(), plan.rangeOffsetTable(),
                plan.rangeTable());
        return new DevicePlan(plan, t[0], t[1], t[2], t[3]);
    }

    /**
     * Copies int tables into new buffers of {@code scope} and waits until they are on the device: a synchronous
     * copy from pageable memory may return before its DMA ends, and kernels on non-blocking streams do not wait.
     */
    static DeviceBuffer[] uploadTables(DeviceScope scope, int[]... tables) {
        DeviceBuffer[] buffers = new DeviceBuffer[tables.length];
        for (int i = 0; i < tables.length; i++) {
            buffers[i] = scope.allocate(4L * tables[i].length);
            buffers[i].copyFromHost(tables[i]);
        }
        scope.context().synchronize();
        return buffers;
    }

    /**
     * STA forward: {@code o = softmax(scale · q kᵀ, STA mask) v}, tokens in tile order. Uploads the plan into a
     * temporary scope and so returns only once the kernel has finished; a caller that attends many times with one
     * layout should {@link #upload} a {@link KvRangePlan#sta} once and call {@link #forward}.
     *
     * @param lse fp32 [B, heads, S] log-sum-exp per row, or null
     */
    public void sta(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse, TokenLayout layout,
                    Window[] windowsPerHead, float scale, CudaStream stream) {
        KvRangePlan plan = KvRangePlan.sta(layout, windowsPerHead);
        try (DeviceScope scope = library.context().openScope()) {
            forward(q, k, v, o, lse, upload(plan, scope), scale, stream);
        }
    }

    /** Dense forward over any S; returns once the kernel has finished (see {@link #sta}). */
    public void dense(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse, float scale,
                      CudaStream stream) {
        checkRank(q, "q");
        KvRangePlan plan = KvRangePlan.dense(q.dim(2), q.dim(1));
        try (DeviceScope scope = library.context().openScope()) {
            forward(q, k, v, o, lse, upload(plan, scope), scale, stream);
        }
    }

    /** Queues the forward pass on {@code stream}; the plan's buffers must outlive the kernel. */
    public void forward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse,
                        DevicePlan plan, float scale, CudaStream stream) {
        checkTensors(q, k, v, o, lse, scale, stream);
        int batch = q.dim(0), heads = q.dim(1), seq = q.dim(2);
        KvRangePlan p = plan.plan();
        if (p.sequenceLength() != seq || p.heads() != heads) {
            throw new IllegalArgumentException("tensors have " + heads + " heads and S = " + seq + " but the plan is for "
                    + p.heads() + " heads and S = " + p.sequenceLength());
        }
        checkBlockRows(p.blockRows());
        launch(q, k, v.buffer().address(), 0, 0, o, lse, plan.queryBlocks(), p.blockCount(), p.blockRows(),
                plan.listOf(), plan.rangeOffsets(), plan.ranges(), null, p.slots(), heads,
                new Dim3(p.blockCount(), heads, batch), scale, outputTokenHeads(q, o), stream);
    }

    /**
     * Queues the forward over work tables already in device memory in which every (batch, head) pair is a plane of
     * its own ({@link PlaneLists}; VSA writes such lists on the device). Query blocks hold at most 128 rows, or 64 on
     * the Hopper path, which alone takes blocks packing several tiles (lists with member bytes).
     */
    void forwardPlanes(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse,
                       PlaneLists lists, float scale, CudaStream stream) {
        checkTensors(q, k, v, o, lse, scale, stream);
        forwardPlanes(q, k, v.buffer().address(), 0, 0, o, lse, lists, scale, stream);
    }

    /**
     * {@link #forwardPlanes(DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor, PlaneLists, float,
     * CudaStream)} with V read from token rows (the portable and HOPPER kernels; the warp-specialized one reads V
     * through a tensor map of planes).
     */
    void forwardPlanes(DeviceTensor q, DeviceTensor k, TokenColumns v, DeviceTensor o, DeviceTensor lse,
                       PlaneLists lists, float scale, CudaStream stream) {
        if (path == Path.HOPPER_WARP_SPECIALIZED) {
            throw new IllegalArgumentException("the warp-specialized kernel reads V as planes, not token rows");
        }
        checkShared(q, k, v.rows(), o, lse, scale, stream);
        v.checkLike(q, "v");
        forwardPlanes(q, k, v.address(), q.dim(1), v.rowStride(), o, lse, lists, scale, stream);
    }

    private void forwardPlanes(DeviceTensor q, DeviceTensor k, long v, int vTokenHeads, int vRowStride, DeviceTensor o,
                               DeviceTensor lse, PlaneLists lists, float scale, CudaStream stream) {
        checkBlockRows(lists.blockRows());
        if (lists.members() != null && !(path == Path.HOPPER && lists.blockRows() == 64)) {
            throw new IllegalArgumentException("blocks packing several tiles need the HOPPER kernel with 64-row blocks, "
                    + "not " + path + " with " + lists.blockRows());
        }
        int planes = Math.multiplyExact(q.dim(0), q.dim(1));
        if (planes > MAX_GRID_YZ) {
            throw new IllegalArgumentException("B x heads = " + planes + " must be at most " + MAX_GRID_YZ);
        }
        launch(q, k, v, vTokenHeads, vRowStride, o, lse, lists.queryBlocks(), lists.blockCount(), lists.blockRows(),
                lists.listOf(), lists.rangeOffsets(), lists.ranges(), lists.members(), lists.slots(), planes,
                new Dim3(lists.blockCount(), planes, 1), scale, outputTokenHeads(q, o), stream);
    }

    private void checkBlockRows(int blockRows) {
        if (blockRows != KvRangePlan.BLOCK_ROWS && !(blockRows == 64 && path == Path.HOPPER)) {
            throw new IllegalArgumentException("query blocks of " + blockRows + " rows: the " + path
                    + " kernel takes " + KvRangePlan.BLOCK_ROWS + (path == Path.HOPPER ? " or 64" : ""));
        }
    }

    /** The kernels' oTokenHeads: 0 for an output laid out like q, the head count for token rows. */
    private static int outputTokenHeads(DeviceTensor q, DeviceTensor o) {
        return o.rank() == 3 ? q.dim(1) : 0;
    }

    /** q, k and v as planes of one shape, type and alignment, and what {@link #checkShared} checks. */
    private void checkTensors(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o, DeviceTensor lse,
                              float scale, CudaStream stream) {
        checkShared(q, k, v, o, lse, scale, stream);
        checkLikeQ(q, v, "v");
    }

    /**
     * Everything but V's own layout, which the caller checks (as planes or as {@link TokenColumns}): q and k, o,
     * lse, the scale, and that neither o nor lse overlaps an input ({@code vMemory}: the tensor V is read from).
     */
    private void checkShared(DeviceTensor q, DeviceTensor k, DeviceTensor vMemory, DeviceTensor o, DeviceTensor lse,
                             float scale, CudaStream stream) {
        checkLikeQ(q, q, "q");
        checkLikeQ(q, k, "k");
        checkOutputShape(q, o);
        if (o.dtype() != q.dtype()) {
            throw new IllegalArgumentException("q is " + q.dtype() + " but o is " + o.dtype()
                    + "; q, k, v and o must have one element type");
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
        if (!(scale > 0) || !Float.isFinite(scale)) {
            throw new IllegalArgumentException("scale must be positive and finite, got " + scale);
        }
        if (lse != null) {
            if (lse.dtype() != DType.F32 || lse.rank() != 3 || lse.dim(0) != batch || lse.dim(1) != heads || lse.dim(2) != seq) {
                throw new IllegalArgumentException("lse must be F32 [" + batch + ", " + heads + ", " + seq + "], got "
                        + lse.dtype() + " " + lse.shapeString());
            }
            checkDisjoint(lse, "lse", q, k, vMemory, o);
        }
        if (o.buffer().address() % 4 != 0) {
            throw new IllegalArgumentException("o must be 4-byte aligned, got " + o);
        }
        checkDisjoint(o, "o", q, k, vMemory);
        if (lse != null) {
            Kernels.checkContext(library, stream, q, k, vMemory, o, lse);
        } else {
            Kernels.checkContext(library, stream, q, k, vMemory, o);
        }
    }

    /** An input laid out like q: rank 4, q's shape and type, 16-byte aligned. */
    private static void checkLikeQ(DeviceTensor q, DeviceTensor t, String name) {
        checkRank(t, name);
        if (!t.sameShape(q)) {
            throw new IllegalArgumentException("q is " + q.shapeString() + " but " + name + " is " + t.shapeString()
                    + "; q, k and v must have one shape");
        }
        if (t.dtype() != q.dtype()) {
            throw new IllegalArgumentException("q is " + q.dtype() + " but " + name + " is " + t.dtype()
                    + "; q, k, v and o must have one element type");
        }
        if (t.buffer().address() % 16 != 0) {
            throw new IllegalArgumentException(name + " must be 16-byte aligned (the kernels copy rows in 16-byte "
                    + "pieces), got " + t);
        }
    }

    /** v: the address of V's planes (vTokenHeads 0) or of its first token row's first head (see TokenColumns). */
    private void launch(DeviceTensor q, DeviceTensor k, long v, int vTokenHeads, int vRowStride, DeviceTensor o,
                        DeviceTensor lse, DeviceBuffer queryBlocks, int blockCount, int blockRows, DeviceBuffer listOf,
                        DeviceBuffer rangeOffsets, DeviceBuffer ranges, DeviceBuffer members, int slots, int heads,
                        Dim3 grid, float scale, int oTokenHeads, CudaStream stream) {
        int d = q.dim(3);
        boolean bm64 = blockRows == 64;
        String family = switch (path) {
            case PORTABLE -> PORTABLE_FAMILY;
            case HOPPER -> HOPPER_FAMILY;
            case HOPPER_WARP_SPECIALIZED -> WARP_SPECIALIZED_FAMILY;
            case AUTO -> throw new IllegalStateException("AUTO is resolved in the constructor");
        };
        String blocks = members != null ? "bm64p_" : bm64 ? "bm64_" : path == Path.HOPPER_WARP_SPECIALIZED && keyBlock == 128 ? "n128_" : "";
        String entry = "tileattn_" + family + "_fwd_" + blocks + (q.dtype() == DType.BF16 ? "bf16" : "f16") + "_d" + d;
        float scaleLog2 = (float) (scale / Math.log(2));
        if (path == Path.HOPPER_WARP_SPECIALIZED) {
            launchWarpSpecialized(family, entry, q, k, v, o, lse, queryBlocks, blockCount, listOf, rangeOffsets, ranges,
                    slots, heads, grid, scaleLog2, oTokenHeads, stream);
            return;
        }
        // Threads and dynamic shared memory. Portable (PortableConfig, BN = 64): Q tile plus two stages of K and of V.
        // HOPPER (Sm90Config, BN = 64): Q (64 rows for bm64), two stages of K and three of V, plus 1 KiB to align its
        // swizzled tiles.
        int threads = bm64 ? 128 : 256;
        int sharedBytes = path == Path.PORTABLE ? 768 * d : (bm64 ? 768 : 896) * d + 1024;
        KernelArgs args = KernelArgs.of()
                .pointer(q).pointer(k).i64(v).pointer(o)
                .i64(lse == null ? 0 : lse.buffer().address())
                .pointer(queryBlocks).pointer(listOf).pointer(rangeOffsets).pointer(ranges)
                .i32(slots).i32(heads).i32(q.dim(2))
                .f32(scaleLog2).i32(oTokenHeads).i32(vTokenHeads).i32(vRowStride);
        if (members != null) {
            args.pointer(members);
        }
        library.function(family, entry).launch(grid, Dim3.of(threads), sharedBytes, stream, args);
    }

    /**
     * The warp-specialized kernel: q, k, v as tensor maps over their [B * heads * S, d] rows (boxes of 128 query rows
     * and 192 key rows), one block per work item of {@code grid}, or one per multiprocessor walking the items when
     * {@code persistent} (see the constructor). Dynamic shared memory
     * (Sm90WsConfig, BN = 192, two stages): 1 KiB alignment slack, Q (128 rows), two stages of K and of V (192 rows
     * each), ten 8-byte mbarriers: 230480 bytes at d = 128.
     */
    private void launchWarpSpecialized(String family, String entry, DeviceTensor q, DeviceTensor k, long v,
                                       DeviceTensor o, DeviceTensor lse, DeviceBuffer queryBlocks, int blockCount,
                                       DeviceBuffer listOf, DeviceBuffer rangeOffsets, DeviceBuffer ranges, int slots,
                                       int heads, Dim3 grid, float scaleLog2, int oTokenHeads, CudaStream stream) {
        int d = q.dim(3), seq = q.dim(2);
        long rows = (long) grid.z() * heads * seq;
        if (rows > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("B x heads x S = " + rows + " rows: the warp-specialized kernel addresses "
                    + "rows with 32-bit coordinates; use Path.HOPPER");
        }
        int items = Math.multiplyExact(Math.multiplyExact(blockCount, grid.y()), grid.z());
        int sharedBytes = 1024 + (128 + 2 * 2 * keyBlock) * d * 2 + 10 * 8;
        KernelArgs args = KernelArgs.of();
        try (Arena arena = Arena.ofConfined()) {
            args.struct(TensorMap.rows16(q.buffer().address(), q.dtype(), rows, d, 128, arena), TensorMap.ALIGNMENT)
                    .struct(TensorMap.rows16(k.buffer().address(), q.dtype(), rows, d, keyBlock, arena), TensorMap.ALIGNMENT)
                    .struct(TensorMap.rows16(v, q.dtype(), rows, d, keyBlock, arena), TensorMap.ALIGNMENT);
        }
        args.pointer(o).i64(lse == null ? 0 : lse.buffer().address())
                .pointer(queryBlocks).pointer(listOf).pointer(rangeOffsets).pointer(ranges)
                .i32(slots).i32(heads).i32(seq).f32(scaleLog2).i32(blockCount).i32(items).i32(oTokenHeads);
        int blocks = persistent ? Math.min(items, library.context().device().multiprocessors()) : items;
        library.function(family, entry).launch(Dim3.of(blocks), Dim3.of(384), sharedBytes, stream, args);
    }

    /** o is q's shape [B, heads, S, d] or token rows [B, S, heads·d]. */
    static void checkOutputShape(DeviceTensor q, DeviceTensor o) {
        if (o == null) {
            throw new IllegalArgumentException("o is missing");
        }
        checkRank(q, "q");
        boolean likeQ = o.sameShape(q);
        boolean tokenRows = o.rank() == 3 && o.dim(0) == q.dim(0) && o.dim(1) == q.dim(2)
                && (long) o.dim(2) == (long) q.dim(1) * q.dim(3);
        if (!likeQ && !tokenRows) {
            throw new IllegalArgumentException("o must be q's shape " + q.shapeString() + " or token rows ["
                    + q.dim(0) + ", " + q.dim(2) + ", " + (long) q.dim(1) * q.dim(3) + "], got " + o.shapeString());
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

    private static void checkDisjoint(DeviceTensor out, String name, DeviceTensor... inputs) {
        for (DeviceTensor in : inputs) {
            if (out.buffer().overlaps(in.buffer())) {
                throw new IllegalArgumentException(name + " overlaps an input tensor; the kernel cannot write in place");
            }
        }
    }
}
