package tileattn.kernels;

import tileattn.tensor.DType;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.mask.TileLists;

/**
 * Device memory of VSA for one {@link VsaPlan}, element type and head dim, allocated once and reused by every
 * forward (and backward) with that plan, so that no call allocates. A forward leaves here what its backward reads:
 * the pooled q, k, v, the coarse output per tile and its log-sum-exp, the fine output and its log-sum-exp, the
 * selection and the fine kernel's KV ranges (and, where its plan packs tiles, the packed lists' member bytes). A
 * workspace made for training also holds the selection's transpose bytes and the backward's scratch.
 */
public final class VsaWorkspace {

    private final VsaPlan plan;
    private final DType dtype;
    private final int headDim;
    private final boolean training;
    final DeviceTensor pooledQ, pooledK, pooledV, coarse, coarseLse, fine, fineLse;
    final DeviceBuffer selection, ranges, members;
    /** The selection-only forward's scores of {@link #scorePlanes} planes, [scorePlanes, tiles, tiles] fp32. */
    final DeviceBuffer coarseScores;
    final int scorePlanes;
    // training only (null otherwise)
    final DeviceBuffer chosen;
    final DeviceTensor dCoarse, probs, dScores, dqShare, dkShare, dvShare;
    final DeviceBuffer keyRangeCounts, keyRangeOffsets, keyRanges, fineScratch;

    /** The most scratch a workspace without a backward spends on the selection's scores, unless one plane needs more. */
    private static final long SCORE_SCRATCH_BYTES = 64L << 20;

    private VsaWorkspace(VsaPlan plan, DType dtype, int headDim, boolean training, long scoreScratchBytes,
                         DeviceScope scope) {
        this.plan = plan;
        this.dtype = dtype;
        this.headDim = headDim;
        this.training = training;
        int b = plan.batch(), h = plan.heads(), tiles = plan.tiles(), s = plan.grid().videoTokens();
        long rangeCount = (long) plan.planes() * tiles * plan.topK();
        pooledQ = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
        pooledK = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
        pooledV = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
        coarse = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
        coarseLse = scope.allocateTensor(DType.F32, b, h, tiles);
        fine = scope.allocateTensor(dtype, b, h, s, headDim);
        fineLse = scope.allocateTensor(DType.F32, b, h, s);
        selection = scope.allocate(4 * rangeCount);
        ranges = scope.allocate(8 * plan.rangeCount());
        members = plan.groupCount() > 0 ? scope.allocate(plan.rangeCount()) : null;
        long planeScores = 4L * tiles * tiles;
        if (training) {
            chosen = scope.allocate(Math.multiplyExact((long) plan.planes() * tiles, tiles));
            dCoarse = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
            probs = scope.allocateTensor(DType.F32, b, h, tiles, tiles);
            dScores = scope.allocateTensor(DType.F32, b, h, tiles, tiles);
            dqShare = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
            dkShare = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
            dvShare = scope.allocateTensor(DType.F32, b, h, tiles, headDim);
            long lists = (long) plan.planes() * tiles;
            keyRangeCounts = scope.allocate(4 * lists);
            keyRangeOffsets = scope.allocate(4 * (lists + 1));
            keyRanges = scope.allocate(8 * rangeCount);  // each selected pair starts at most one run of query tiles
            fineScratch = scope.allocate(TileAttentionBackwardKernel.workspaceBytes(b, h, s));
            // The backward writes probs before it reads them, so a forward may leave its scores there.
            coarseScores = probs.buffer();
            scorePlanes = plan.planes();
        } else {
            chosen = null;
            dCoarse = probs = dScores = dqShare = dkShare = dvShare = null;
            keyRangeCounts = keyRangeOffsets = keyRanges = fineScratch = null;
            scorePlanes = Math.clamp(scoreScratchBytes / planeScores, 1, plan.planes());
            coarseScores = scope.allocate(scorePlanes * planeScores);
        }
    }

    /**
     * Allocates a workspace in {@code scope}.
     *
     * @param training whether backward passes will follow the forwards (more memory: two [B, heads, tiles, tiles]
     *                 fp32 matrices and one byte per tile pair; without, a selection-only forward's scores take
     *                 up to 64 MiB, or one plane's [tiles, tiles] fp32 where that is more)
     */
    public static VsaWorkspace allocate(VsaPlan plan, DType dtype, int headDim, boolean training, DeviceScope scope) {
        return allocate(plan, dtype, headDim, training, SCORE_SCRATCH_BYTES, scope);
    }

    /** With a budget for the selection's scores other than 64 MiB (tests: several passes on small grids). */
    static VsaWorkspace allocate(VsaPlan plan, DType dtype, int headDim, boolean training, long scoreScratchBytes,
                                 DeviceScope scope) {
        if (dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("VSA runs on BF16 or F16 tensors, got " + dtype);
        }
        if (headDim != 64 && headDim != 128) {
            throw new IllegalArgumentException("head dim must be 64 or 128, got " + headDim);
        }
        return new VsaWorkspace(plan, dtype, headDim, training, scoreScratchBytes, scope);
    }

    public VsaPlan plan() {
        return plan;
    }

    /** The fine forward's work over this workspace's lists. */
    PlaneLists fineLists() {
        return plan.forwardLists(ranges, members);
    }

    public DType dtype() {
        return dtype;
    }

    public int headDim() {
        return headDim;
    }

    public boolean training() {
        return training;
    }

    /** Mean of q over each tile's real tokens, F32 [B, heads, tiles, d] (likewise {@link #pooledK}, {@link #pooledV}). */
    public DeviceTensor pooledQ() {
        return pooledQ;
    }

    public DeviceTensor pooledK() {
        return pooledK;
    }

    public DeviceTensor pooledV() {
        return pooledV;
    }

    /** softmax(pooledQ · pooledKᵀ · scale) · pooledV per query tile, F32 [B, heads, tiles, d]. */
    public DeviceTensor coarse() {
        return coarse;
    }

    /** Natural-log log-sum-exp of the scaled coarse scores, F32 [B, heads, tiles]. */
    public DeviceTensor coarseLse() {
        return coarseLse;
    }

    /** The fine branch's output, [B, heads, S, d] in the tensors' type. */
    public DeviceTensor fine() {
        return fine;
    }

    /** The fine branch's log-sum-exp per token, F32 [B, heads, S]. */
    public DeviceTensor fineLse() {
        return fineLse;
    }

    /** The last forward's selection, downloaded: per plane (batch · heads + head) the k KV tiles of each query tile. */
    public TileLists[] downloadSelection() {
        int tiles = plan.tiles(), k = plan.topK(), planes = plan.planes();
        int[] all = new int[planes * tiles * k];
        selection.copyToHost(all);
        TileLists[] lists = new TileLists[planes];
        int[] offsets = new int[tiles + 1];
        for (int t = 0; t <= tiles; t++) {
            offsets[t] = t * k;
        }
        for (int p = 0; p < planes; p++) {
            int[] kv = new int[tiles * k];
            System.arraycopy(all, p * tiles * k, kv, 0, kv.length);
            lists[p] = new TileLists(offsets.clone(), kv);
        }
        return lists;
    }
}
