package tileattn.kernels;

import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.KernelArgs;
import tileattn.layout.TileGrid;

/**
 * Video Sparse Attention on the GPU over tile-ordered [B, heads, S, d] video tokens (no text): vsa.cu for pooling,
 * the coarse attention between tiles with its top-k selection, and the output's combination, and
 * {@link TileAttentionKernel}'s kernels for the fine attention over the selected tiles. The selection never
 * leaves the device: the coarse kernel writes the fine kernel's KV range lists itself, one list per (batch, head,
 * query tile), so a forward is a queue of four launches with no host round trip. The backward likewise builds the
 * selection's transpose on the device and runs {@link TileAttentionBackwardKernel}'s kernels over it, then the
 * coarse branch's backward, whose pooled gradients reach every real token of each tile. bf16 or fp16 tensors, fp32
 * accumulation, d = 64 or 128; partial edge tiles are averaged over their real tokens. All memory lives in a
 * {@link VsaWorkspace} allocated once per {@link VsaPlan}.
 */
public final class VsaKernels {

    private static final String FAMILY = "vsa";
    private static final String BWD_FAMILY = "tile_attention_bwd";
    private static final int BWD_THREADS = 256;
    private static final int SCAN_THREADS = 1024;
    private static final int ROW_THREADS = 128;
    private static final int COARSE_THREADS = 256;
    /** Query tiles per coarse block at most, and the tile rows the coarse kernels stage at a time (vsa.cu). */
    private static final int COARSE_QT = 16;
    private static final int COARSE_FWD_CHUNK = 64;
    /** The selection's passes (vsa.cu): query and key tiles per scores block, query tiles (warps) per select block. */
    private static final int SCORE_TILE = 64;
    private static final int SELECT_ROWS = COARSE_THREADS / 32;
    private static final int MAX_SELECT_SLOTS = 48;
    private static final int STATIC_SHARED_SLACK = 256;
    private static final int MAX_GRID_YZ = 65535;

    private final KernelLibrary library;
    private final TileAttentionKernel fineKernel;
    private final TileAttentionBackwardKernel.Path backwardPath;
    /** Tiles per block of the coarse backward's passes (vsa.cu): 64, or 32 where shared memory is short. */
    private final int coarseBackwardBlock;

    public VsaKernels(KernelLibrary library) {
        this(library, TileAttentionKernel.Path.AUTO);
    }

    /**
     * @param path which fine attention kernel runs (see {@link TileAttentionKernel.Path}); AUTO takes the HOPPER
     *             kernel on compute capability 9.0, not the warp-specialized one: VSA's KV ranges are single tiles
     *             (64 tokens for 4×4×4), and that kernel's 192-key blocks and 128-row query blocks would compute
     *             mostly masked keys and empty rows. The fine backward follows: the portable kernels with
     *             PORTABLE, else the fastest for the device
     */
    public VsaKernels(KernelLibrary library, TileAttentionKernel.Path path) {
        this(library, path, 0);
    }

    /** As {@link #VsaKernels(KernelLibrary, TileAttentionKernel.Path)}, with the coarse backward's block size forced
     *  (32 or 64 tiles) or left to the device's shared memory (0): for tests of both. */
    VsaKernels(KernelLibrary library, TileAttentionKernel.Path path, int coarseBackwardBlock) {
        if (coarseBackwardBlock != 0 && coarseBackwardBlock != 32 && coarseBackwardBlock != 64) {
            throw new IllegalArgumentException("coarse backward blocks hold 32 or 64 tiles, not " + coarseBackwardBlock);
        }
        this.library = library;
        long sharedLimit = library.context().device().maxSharedMemoryPerBlockOptin() - STATIC_SHARED_SLACK;
        this.coarseBackwardBlock = coarseBackwardBlock != 0 ? coarseBackwardBlock
                : coarseRowsShared(128, 64) <= sharedLimit ? 64 : 32;
        boolean hopper = library.context().device().computeCapabilityNumber() == 90;
        this.fineKernel = new TileAttentionKernel(library, path == TileAttentionKernel.Path.AUTO && hopper
                ? TileAttentionKernel.Path.HOPPER : path);
        // fastestFor never picks the fused dQ kernels, whose accumulator the workspace does not hold.
        this.backwardPath = path == TileAttentionKernel.Path.PORTABLE ? TileAttentionBackwardKernel.Path.PORTABLE
                : TileAttentionBackwardKernel.Path.fastestFor(library);
    }

    /** The fine attention kernel in use (never AUTO). */
    public TileAttentionKernel.Path path() {
        return fineKernel.path();
    }

    int coarseBackwardBlock() {
        return coarseBackwardBlock;
    }

    /** VSA's k for a sparsity s in [0, 1): max(1, min(ceil((1 − s) · tiles), tiles)). */
    public static int topKFromSparsity(double sparsity, int tiles) {
        if (!(sparsity >= 0 && sparsity < 1)) {
            throw new IllegalArgumentException("sparsity must be in [0, 1), got " + sparsity);
        }
        if (tiles < 1) {
            throw new IllegalArgumentException("tiles must be positive, got " + tiles);
        }
        return (int) Math.max(1, Math.min(Math.ceil((1 - sparsity) * tiles), tiles));
    }

    /**
     * The tables for one grid, batch, head count and k, uploaded into {@code scope}. Blocks have the rows
     * {@link BlockRows#fewestComputed} picks for the grid's tiles (64 for tiles of at most 64 tokens, such as
     * 4×4×4), in the backward always and in the fine forward on the Hopper path (its only kernel with 64-row blocks).
     */
    public VsaPlan plan(TileGrid grid, int batch, int heads, int topK, DeviceScope scope) {
        int rows = BlockRows.fewestComputed(VsaPlan.tileLengths(grid));
        return plan(grid, batch, heads, topK, fineKernel.path() == TileAttentionKernel.Path.HOPPER ? rows : 128, rows,
                scope);
    }

    /** As {@link #plan(TileGrid, int, int, int, DeviceScope)} with the fine kernel's block rows given: 128, or 64 (Hopper path). */
    public VsaPlan plan(TileGrid grid, int batch, int heads, int topK, int blockRows, DeviceScope scope) {
        return plan(grid, batch, heads, topK, blockRows, BlockRows.fewestComputed(VsaPlan.tileLengths(grid)), scope);
    }

    /**
     * As {@link #plan(TileGrid, int, int, int, int, DeviceScope)} with the backward's block rows given too: 128 or
     * 64 (the backward kernels have both on every GPU).
     */
    public VsaPlan plan(TileGrid grid, int batch, int heads, int topK, int blockRows, int backwardRows,
                        DeviceScope scope) {
        if (blockRows == 64 && fineKernel.path() != TileAttentionKernel.Path.HOPPER) {
            throw new IllegalArgumentException("64-row query blocks need the Hopper kernel; this instance runs "
                    + fineKernel.path());
        }
        if ((long) batch * heads > MAX_GRID_YZ) {
            throw new IllegalArgumentException("B x heads = " + (long) batch * heads + " must be at most " + MAX_GRID_YZ);
        }
        coarseQueryTiles(grid.tileCount(), 128);  // fails early when the grid has too many tiles for the coarse kernel
        return VsaPlan.upload(grid, batch, heads, topK, blockRows, backwardRows, scope);
    }

    /**
     * Queues the forward on {@code stream}: {@code out = coarse × gate + fine}, and everything the backward needs
     * into {@code ws}. All tensors [B, heads, S, d] in tile order, of the workspace's type.
     *
     * @param gate multiplies the coarse output elementwise, or null for a gate of 1
     */
    public void forward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor gate, DeviceTensor out,
                        VsaWorkspace ws, float scale, CudaStream stream) {
        VsaPlan plan = ws.plan();
        checkTokens(ws, new DeviceTensor[]{q, k, v, gate, out}, new String[]{"q", "k", "v", "gate", "out"});
        checkScale(scale);
        for (DeviceTensor in : new DeviceTensor[]{q, k, v, gate}) {
            if (in != null && out.buffer().overlaps(in.buffer())) {
                throw new IllegalArgumentException("out overlaps an input tensor; VSA cannot write in place");
            }
        }
        Kernels.checkContext(library, stream, gate == null ? new DeviceTensor[]{q, k, v, out} : new DeviceTensor[]{q, k, v, gate, out});
        pool(q, k, v, ws, true, stream);
        coarse(ws, scale, true, stream);
        fine(q, k, v, ws, scale, stream);
        combine(gate, out, ws, stream);
    }

    /**
     * The forward with the coarse branch gated by zero, as in Wan, whose VSA gate is a zero-initialised projection
     * absent from the published checkpoints: pooled q and k, their coarse scores and the selection, then the fine
     * attention over the selected tiles, which is the output. The coarse output, both log-sum-exps' coarse half and
     * the pooled v are not computed (no backward can follow). Returns {@code ws.fine()} (valid until the next
     * forward with {@code ws}); queued on {@code stream}.
     */
    public DeviceTensor forwardFine(DeviceTensor q, DeviceTensor k, DeviceTensor v, VsaWorkspace ws, float scale,
                                    CudaStream stream) {
        forwardFine(q, k, v, ws.fine(), ws, scale, stream);
        return ws.fine();
    }

    /**
     * {@link #forwardFine(DeviceTensor, DeviceTensor, DeviceTensor, VsaWorkspace, float, CudaStream)} into {@code out}:
     * q's shape, or token rows [B, S, heads·d] (the matrix an output projection reads), not overlapping the inputs.
     */
    public void forwardFine(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, VsaWorkspace ws,
                            float scale, CudaStream stream) {
        forwardFine(q, k, v, out, ws, scale, false, stream);
    }

    /**
     * {@link #forwardFine(DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor, VsaWorkspace, float, CudaStream)}
     * without the pooling pass: ws's pooled q and k already hold q's and k's tile means (written by
     * {@link DitKernels#toHeadsPooled} as q and k were laid out per head).
     */
    public void forwardFinePooled(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, VsaWorkspace ws,
                                  float scale, CudaStream stream) {
        forwardFine(q, k, v, out, ws, scale, true, stream);
    }

    /**
     * {@link #forwardFinePooled(DeviceTensor, DeviceTensor, DeviceTensor, DeviceTensor, VsaWorkspace, float,
     * CudaStream)} with v read from token rows (such as the v columns of a fused q, k, v projection), on the portable
     * and HOPPER fine kernels.
     */
    public void forwardFinePooled(DeviceTensor q, DeviceTensor k, TokenColumns v, DeviceTensor out, VsaWorkspace ws,
                                  float scale, CudaStream stream) {
        checkFine(q, k, v, out, ws, scale, stream);
        coarse(ws, scale, false, stream);
        fineSelected(q, k, v, out, ws, scale, stream);
    }

    /**
     * The first half of {@link #forwardFinePooled(DeviceTensor, DeviceTensor, TokenColumns, DeviceTensor,
     * VsaWorkspace, float, CudaStream)}, for callers that time the halves apart: the selection from ws's pooled q
     * and k, and the fine kernel's KV ranges, left in ws.
     */
    public void selectPooled(VsaWorkspace ws, float scale, CudaStream stream) {
        checkScale(scale);
        Kernels.checkContext(library, stream);
        coarse(ws, scale, false, stream);
    }

    /** The second half: the fine attention over the selection that {@link #selectPooled} left in ws. */
    public void forwardSelected(DeviceTensor q, DeviceTensor k, TokenColumns v, DeviceTensor out, VsaWorkspace ws,
                                float scale, CudaStream stream) {
        checkFine(q, k, v, out, ws, scale, stream);
        fineSelected(q, k, v, out, ws, scale, stream);
    }

    private void checkFine(DeviceTensor q, DeviceTensor k, TokenColumns v, DeviceTensor out, VsaWorkspace ws,
                           float scale, CudaStream stream) {
        checkTokens(ws, new DeviceTensor[]{q, k}, new String[]{"q", "k"});
        checkScale(scale);
        checkFineOutput(out, ws, q, k, v.rows());
        Kernels.checkContext(library, stream, q, k, out);
    }

    private void fineSelected(DeviceTensor q, DeviceTensor k, TokenColumns v, DeviceTensor out, VsaWorkspace ws,
                              float scale, CudaStream stream) {
        packUnion(ws, stream);
        fineKernel.forwardPlanes(q, k, v, out, ws.fineLse, ws.fineLists(), scale, stream);
    }

    private void forwardFine(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, VsaWorkspace ws,
                             float scale, boolean pooled, CudaStream stream) {
        checkTokens(ws, new DeviceTensor[]{q, k, v}, new String[]{"q", "k", "v"});
        checkScale(scale);
        checkFineOutput(out, ws, q, k, v);
        Kernels.checkContext(library, stream, q, k, v, out);
        if (!pooled) {
            pool(q, k, v, ws, false, stream);
        }
        coarse(ws, scale, false, stream);
        fine(q, k, v, out, ws, scale, stream);
    }

    /** out is q's shape or token rows, of the workspace's type, and overlaps none of the inputs (q first). */
    private static void checkFineOutput(DeviceTensor out, VsaWorkspace ws, DeviceTensor... inputs) {
        TileAttentionKernel.checkOutputShape(inputs[0], out);
        if (out.dtype() != ws.dtype()) {
            throw new IllegalArgumentException("out is " + out.dtype() + " but the workspace is for " + ws.dtype());
        }
        for (DeviceTensor in : inputs) {
            if (out.buffer().overlaps(in.buffer())) {
                throw new IllegalArgumentException("out overlaps an input tensor; VSA cannot write in place");
            }
        }
    }

    // The forward's four steps, each queued on the stream (arguments already checked by forward).

    /** Pooled q and k, and pooled v when {@code withV} (the coarse output needs it, the selection does not). */
    void pool(DeviceTensor q, DeviceTensor k, DeviceTensor v, VsaWorkspace ws, boolean withV, CudaStream stream) {
        VsaPlan plan = ws.plan();
        int tiles = plan.tiles();
        library.function(FAMILY, "tileattn_vsa_pool_" + suffix(ws)).launch(new Dim3(tiles, plan.planes(), withV ? 3 : 2),
                Dim3.of(ROW_THREADS), 0, stream, KernelArgs.of().pointer(q).pointer(k).pointer(v)
                        .pointer(ws.pooledQ).pointer(ws.pooledK).pointer(ws.pooledV)
                        .pointer(plan.tileStarts()).i32(tiles).i32(plan.grid().videoTokens()));
    }

    /**
     * The selection, the fine kernel's KV ranges (and the transpose bytes), and with {@code withOutput} the coarse
     * attention's output and log-sum-exp.
     */
    void coarse(VsaWorkspace ws, float scale, boolean withOutput, CudaStream stream) {
        VsaPlan plan = ws.plan();
        int tiles = plan.tiles(), d = ws.headDim();
        if (ws.chosen != null) {
            ws.chosen.fillAsync((byte) 0, stream);
        }
        if (!withOutput) {
            select(ws, scale, stream);
            return;
        }
        int qt = coarseQueryTiles(tiles, d);
        library.function(FAMILY, "tileattn_vsa_coarse_fwd_d" + d).launch(
                Dim3.of((tiles + qt - 1) / qt, plan.planes()), Dim3.of(COARSE_THREADS), coarseForwardShared(d, qt, tiles),
                stream, KernelArgs.of().pointer(ws.pooledQ).pointer(ws.pooledK).pointer(ws.pooledV)
                        .pointer(ws.coarse).pointer(ws.coarseLse).pointer(ws.selection).pointer(ws.ranges)
                        .i64(ws.chosen == null ? 0 : ws.chosen.address())
                        .pointer(plan.tileStarts()).i32(tiles).i32(plan.topK()).i32(qt).f32(scale));
    }

    /**
     * The selection alone, in passes of {@link VsaWorkspace#scorePlanes} planes: their scores into the workspace's
     * scratch (64 × 64 tiles per block), then one warp's top-k per query tile.
     */
    private void select(VsaWorkspace ws, float scale, CudaStream stream) {
        VsaPlan plan = ws.plan();
        int tiles = plan.tiles(), d = ws.headDim(), topK = plan.topK(), planes = plan.planes();
        int scoreBlocks = (tiles + SCORE_TILE - 1) / SCORE_TILE;
        // Register rows in steps of four keys a lane (128 tiles) up to 48 keys; longer rows are read from memory.
        int slots = tiles <= 32 * MAX_SELECT_SLOTS ? 4 * ((tiles + 127) / 128) : 0;
        for (int p0 = 0; p0 < planes; p0 += ws.scorePlanes) {
            int n = Math.min(ws.scorePlanes, planes - p0);
            library.function(FAMILY, "tileattn_vsa_coarse_scores_d" + d).launch(new Dim3(scoreBlocks, scoreBlocks, n),
                    Dim3.of(COARSE_THREADS), 4 * 2 * d * (SCORE_TILE + 4), stream,
                    KernelArgs.of().i64(ws.pooledQ.buffer().address() + 4L * p0 * tiles * d)
                            .i64(ws.pooledK.buffer().address() + 4L * p0 * tiles * d)
                            .pointer(ws.coarseScores).i32(tiles).f32(scale));
            long rows = (long) p0 * tiles;
            library.function(FAMILY, "tileattn_vsa_coarse_select_s" + slots).launch(
                    Dim3.of((tiles + SELECT_ROWS - 1) / SELECT_ROWS, n), Dim3.of(COARSE_THREADS), 0, stream,
                    KernelArgs.of().pointer(ws.coarseScores).i64(ws.selection.address() + 4 * rows * topK)
                            .i64(ws.ranges.address() + 8 * rows * topK)
                            .i64(ws.chosen == null ? 0 : ws.chosen.address() + rows * tiles)
                            .pointer(plan.tileStarts()).i32(tiles).i32(topK));
        }
    }

    void fine(DeviceTensor q, DeviceTensor k, DeviceTensor v, VsaWorkspace ws, float scale, CudaStream stream) {
        fine(q, k, v, ws.fine, ws, scale, stream);
    }

    private void fine(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, VsaWorkspace ws, float scale,
                      CudaStream stream) {
        packUnion(ws, stream);
        fineKernel.forwardPlanes(q, k, v, out, ws.fineLse, ws.fineLists(), scale, stream);
    }

    /** The lists of the blocks that pack several tiles, from their tiles' selections (none without such blocks). */
    private void packUnion(VsaWorkspace ws, CudaStream stream) {
        VsaPlan plan = ws.plan();
        if (plan.groupCount() == 0) {
            return;
        }
        long base = plan.packedRangeBase();
        library.function(FAMILY, "tileattn_vsa_pack_union").launch(Dim3.of(plan.groupCount(), plan.planes()),
                Dim3.of(COARSE_THREADS), plan.tiles(), stream, KernelArgs.of().pointer(ws.selection)
                        .pointer(plan.groups()).pointer(plan.tileStarts()).i64(ws.ranges.address() + 8 * base)
                        .i64(ws.members.address() + base).i32(plan.groupCount()).i32(plan.tiles())
                        .i32(plan.topK()).i32(plan.packedCapacity()));
    }

    void combine(DeviceTensor gate, DeviceTensor out, VsaWorkspace ws, CudaStream stream) {
        VsaPlan plan = ws.plan();
        int tiles = plan.tiles();
        library.function(FAMILY, "tileattn_vsa_combine_" + suffix(ws)).launch(Dim3.of(tiles, plan.planes()),
                Dim3.of(ROW_THREADS), 0, stream, KernelArgs.of().pointer(ws.fine).pointer(ws.coarse)
                        .i64(gate == null ? 0 : gate.buffer().address()).pointer(out)
                        .pointer(plan.tileStarts()).i32(tiles).i32(plan.grid().videoTokens()));
    }

    /**
     * Queues the backward of the last {@link #forward} with {@code ws} (a training workspace): the fine branch's
     * dq, dk, dv over the forward's selection (held fixed; tile_attention_bwd.cu over lists built here on the
     * device), the coarse branch's gradient through the pooling added to every real token of each tile, and
     * {@code dgate = dOut ⊙ coarse} when the forward had a gate. q, k, v and gate must be the forward's.
     *
     * @param dgate written when {@code gate} is given; null otherwise
     */
    public void backward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor gate, DeviceTensor dOut,
                         DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, DeviceTensor dgate, VsaWorkspace ws,
                         float scale, CudaStream stream) {
        checkTraining(ws);
        checkTokens(ws, new DeviceTensor[]{q, k, v, dOut, dq, dk, dv}, new String[]{"q", "k", "v", "dOut", "dq", "dk", "dv"});
        DeviceTensor[] grads = {dq, dk, dv, dgate};
        String[] gradNames = {"dq", "dk", "dv", "dgate"};
        DeviceTensor[] others = {q, k, v, gate, dOut, dq, dk, dv, dgate};
        for (int i = 0; i < grads.length; i++) {
            for (DeviceTensor other : others) {
                if (grads[i] != null && other != null && other != grads[i] && grads[i].buffer().overlaps(other.buffer())) {
                    throw new IllegalArgumentException(gradNames[i] + " overlaps another tensor of the call; each "
                            + "gradient needs memory of its own");
                }
            }
        }
        Kernels.checkContext(library, stream, q, k, v, dOut, dq, dk, dv);
        coarseBackward(gate, dOut, dgate, ws, scale, stream);
        fineBackward(q, k, v, dOut, dq, dk, dv, ws, scale, stream);
    }

    /**
     * The fine branch's backward: the selection's transpose (per plane and KV tile, the runs of query tiles that
     * chose it, as query token ranges), then tile_attention_bwd.cu's prep, dK/dV and dQ kernels with every
     * (batch, head) pair a plane of its own, as the forward ran. Launch shapes and shared memory follow that
     * file's header. Each gradient row gets its tile's share of the coarse branch's gradient added as it is stored,
     * so {@link #coarseBackward} runs first. Every backward block lies inside one tile (slot = tile), which makes the
     * workspace's [planes, tiles, d] shares the kernels' per-(plane, slot) rows.
     */
    void fineBackward(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor dOut, DeviceTensor dq,
                      DeviceTensor dk, DeviceTensor dv, VsaWorkspace ws, float scale, CudaStream stream) {
        VsaPlan plan = ws.plan();
        int tiles = plan.tiles(), planes = plan.planes(), d = ws.headDim(), seq = plan.grid().videoTokens();
        int lists = planes * tiles;
        int listBlocks = (int) ((32L * lists + COARSE_THREADS - 1) / COARSE_THREADS);
        library.function(FAMILY, "tileattn_vsa_transpose_count").launch(Dim3.of(listBlocks), Dim3.of(COARSE_THREADS), 0,
                stream, KernelArgs.of().pointer(ws.chosen).pointer(ws.keyRangeCounts).i32(lists).i32(tiles));
        library.function(FAMILY, "tileattn_vsa_scan").launch(Dim3.of(1), Dim3.of(SCAN_THREADS), 0, stream,
                KernelArgs.of().pointer(ws.keyRangeCounts).pointer(ws.keyRangeOffsets).i32(lists));
        library.function(FAMILY, "tileattn_vsa_transpose_fill").launch(Dim3.of(listBlocks), Dim3.of(COARSE_THREADS), 0,
                stream, KernelArgs.of().pointer(ws.chosen).pointer(ws.keyRangeOffsets).pointer(ws.keyRanges)
                        .pointer(plan.tileStarts()).i32(lists).i32(tiles));

        String suffix = suffix(ws);
        long rows = (long) planes * seq;
        DeviceBuffer delta = ws.fineScratch.slice(0, 4 * rows);
        DeviceBuffer lse2 = ws.fineScratch.slice(4 * rows, 4 * rows);
        float scaleLog2 = (float) (scale / Math.log(2));
        long chunks = rows * (d / 8);
        int prepBlocks = (int) Math.max(1, Math.min((chunks + BWD_THREADS - 1) / BWD_THREADS,
                8L * library.context().device().multiprocessors()));
        library.function(BWD_FAMILY, "tileattn_tile_attention_bwd_prep_" + suffix).launch(Dim3.of(prepBlocks),
                Dim3.of(BWD_THREADS), 0, stream, KernelArgs.of().pointer(ws.fine).pointer(dOut).pointer(ws.fineLse)
                        .pointer(delta).pointer(lse2).i64(rows));
        TileAttentionBackwardKernel.KernelShape kv =
                TileAttentionBackwardKernel.KernelShape.dkdv(backwardPath, plan.backwardRows(), d);
        library.function(kv.family(), kv.function("dkdv", suffix)).launch(
                new Dim3(plan.keyBlockCount(), planes, 1), Dim3.of(kv.threads()), kv.sharedBytes(), stream,
                KernelArgs.of().pointer(q).pointer(k).pointer(v).pointer(dOut).pointer(lse2).pointer(delta)
                        .pointer(dk).pointer(dv).pointer(ws.dkShare).pointer(ws.dvShare).pointer(plan.keyBlocks())
                        .pointer(plan.listOf()).pointer(ws.keyRangeOffsets).pointer(ws.keyRanges)
                        .i32(tiles).i32(planes).i32(seq).f32(scaleLog2).f32(scale));
        TileAttentionBackwardKernel.KernelShape qs =
                TileAttentionBackwardKernel.KernelShape.dq(backwardPath, plan.backwardRows(), d);
        library.function(qs.family(), qs.function("dq", suffix)).launch(
                new Dim3(plan.gradientQueryBlockCount(), planes, 1), Dim3.of(qs.threads()), qs.sharedBytes(), stream,
                KernelArgs.of().pointer(q).pointer(k).pointer(v).pointer(dOut).pointer(lse2).pointer(delta).pointer(dq)
                        .pointer(ws.dqShare).pointer(plan.gradientQueryBlocks()).pointer(plan.listOf())
                        .pointer(plan.rangeOffsets()).pointer(ws.ranges).i32(tiles).i32(planes).i32(seq).f32(scaleLog2)
                        .f32(scale));
    }

    /**
     * Queues the coarse branch's backward: {@code dgate = dOut ⊙ coarse} (when the forward had a gate) and the
     * gradients of the pooled q, k, v, each divided by its tile's real token count: the share of every token of the
     * tile, which {@link #fineBackward} adds. Kept in the workspace ({@code dqShare} …); from the last forward's state.
     */
    void coarseBackward(DeviceTensor gate, DeviceTensor dOut, DeviceTensor dgate, VsaWorkspace ws, float scale,
                        CudaStream stream) {
        checkTraining(ws);
        checkTokens(ws, new DeviceTensor[]{gate, dOut, dgate}, new String[]{"gate", "dOut", "dgate"});
        if (dOut == null) {
            throw new IllegalArgumentException("dOut is missing");
        }
        if ((gate == null) != (dgate == null)) {
            throw new IllegalArgumentException(gate == null ? "dgate was given but the forward had no gate"
                    : "the forward had a gate: dgate is required");
        }
        if (dgate != null && (dgate.buffer().overlaps(dOut.buffer()) || dgate.buffer().overlaps(gate.buffer()))) {
            throw new IllegalArgumentException("dgate overlaps dOut or gate");
        }
        checkScale(scale);
        Kernels.checkContext(library, stream, gate == null ? new DeviceTensor[]{dOut} : new DeviceTensor[]{gate, dOut, dgate});
        VsaPlan plan = ws.plan();
        int tiles = plan.tiles(), planes = plan.planes(), d = ws.headDim(), seq = plan.grid().videoTokens();
        int block = coarseBackwardBlock, tileBlocks = (tiles + block - 1) / block;
        String entry = (block == 64 ? "" : "b" + block + "_") + "d" + d;

        library.function(FAMILY, "tileattn_vsa_coarse_grad_in_" + suffix(ws)).launch(Dim3.of(tiles, planes),
                Dim3.of(ROW_THREADS), 0, stream, KernelArgs.of().pointer(dOut)
                        .i64(gate == null ? 0 : gate.buffer().address()).pointer(ws.coarse)
                        .i64(dgate == null ? 0 : dgate.buffer().address()).pointer(ws.dCoarse)
                        .pointer(plan.tileStarts()).i32(tiles).i32(seq));
        library.function(FAMILY, "tileattn_vsa_coarse_bwd_rows_" + entry).launch(Dim3.of(tileBlocks, planes),
                Dim3.of(COARSE_THREADS), coarseRowsShared(d, block), stream,
                KernelArgs.of().pointer(ws.pooledQ).pointer(ws.pooledK).pointer(ws.pooledV).pointer(ws.coarse)
                        .pointer(ws.coarseLse).pointer(ws.dCoarse).pointer(ws.probs).pointer(ws.dScores)
                        .pointer(ws.dqShare).pointer(plan.tileStarts()).i32(tiles).f32(scale));
        // Shared memory: Q and dCoarse rows of a block of query tiles, and their P and dS columns of the block's key tiles.
        int colsShared = 4 * (2 * block * (d + 4) + 2 * block * (block + 4));
        library.function(FAMILY, "tileattn_vsa_coarse_bwd_cols_" + entry).launch(Dim3.of(tileBlocks, planes),
                Dim3.of(COARSE_THREADS), colsShared, stream,
                KernelArgs.of().pointer(ws.pooledQ).pointer(ws.dCoarse).pointer(ws.probs).pointer(ws.dScores)
                        .pointer(ws.dkShare).pointer(ws.dvShare).pointer(plan.tileStarts()).i32(tiles).f32(scale));
    }

    /** Query tiles per coarse forward block: as many as fit (at most 16), since each keeps a row of scores. */
    private int coarseQueryTiles(int tiles, int d) {
        long budget = library.context().device().maxSharedMemoryPerBlockOptin() - STATIC_SHARED_SLACK
                - 4L * (COARSE_QT + COARSE_FWD_CHUNK) * (d + 4);
        long qt = Math.min(COARSE_QT, budget / (4L * tiles));
        if (qt < 1) {
            throw new IllegalArgumentException(tiles + " tiles: the coarse kernel keeps a row of scores per query tile in "
                    + "shared memory and " + library.context().device().name() + " fits at most " + budget / 4
                    + "; use larger tiles");
        }
        return (int) qt;
    }

    /** The rows pass's shared memory (vsa.cu): Q, dCoarse, K and V rows of a block of tiles, its dS, lse and delta. */
    private static int coarseRowsShared(int d, int block) {
        return 4 * (4 * block * (d + 4) + block * (block + 4) + 2 * block);
    }

    private static int coarseForwardShared(int d, int qt, int tiles) {
        return 4 * ((COARSE_QT + COARSE_FWD_CHUNK) * (d + 4) + qt * tiles);
    }

    private static String suffix(VsaWorkspace ws) {
        return (ws.dtype() == DType.BF16 ? "bf16" : "f16") + "_d" + ws.headDim();
    }

    private static void checkTraining(VsaWorkspace ws) {
        if (!ws.training()) {
            throw new IllegalArgumentException("the workspace was allocated without training: it keeps no backward state");
        }
    }

    private static void checkScale(float scale) {
        if (!(scale > 0) || !Float.isFinite(scale)) {
            throw new IllegalArgumentException("scale must be positive and finite, got " + scale);
        }
    }

    /** Non-null tensors must be [B, heads, S, d] of the workspace's plan and type, 16-byte aligned. */
    private static void checkTokens(VsaWorkspace ws, DeviceTensor[] tensors, String[] names) {
        VsaPlan plan = ws.plan();
        int[] shape = {plan.batch(), plan.heads(), plan.grid().videoTokens(), ws.headDim()};
        for (int i = 0; i < tensors.length; i++) {
            DeviceTensor t = tensors[i];
            if (t == null) {
                if (!names[i].equals("gate") && !names[i].equals("dgate")) {
                    throw new IllegalArgumentException(names[i] + " is missing");
                }
                continue;
            }
            if (!java.util.Arrays.equals(t.shape(), shape)) {
                throw new IllegalArgumentException(names[i] + " is " + t.shapeString() + " but the plan is for "
                        + java.util.Arrays.toString(shape) + " ([B, heads, T·H·W video tokens, d]; VSA takes no text)");
            }
            if (t.dtype() != ws.dtype()) {
                throw new IllegalArgumentException(names[i] + " is " + t.dtype() + " but the workspace is for " + ws.dtype());
            }
            if (t.buffer().address() % 16 != 0) {
                throw new IllegalArgumentException(names[i] + " must be 16-byte aligned (rows move in 16-byte pieces), got " + t);
            }
        }
    }
}
