package tileattn.kernels;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceBuffer;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.KernelArgs;
import tileattn.layout.Shape3;
import tileattn.tensor.DType;

/**
 * The Wan DiT's own kernels (dit.cu) between its cuBLASLt matrix products: the residual add fused with the next
 * LayerNorm and its modulation or affine, RMSNorm + RoPE + the move to per-head layout (several parts in one
 * launch), its inverse, tanh-GELU, the patch embedding's gather and the head's scatter, and the time embedding's
 * small fp32 products and modulation tables. Token rows are [rows, width] with rows = B · S; the attention
 * kernels' layout is [B, heads, S, d]. Everything is queued on a stream without waiting.
 *
 * <p>The row kernels come in two forms (see dit.cu): vector kernels (a warp, or four for widths above 2048, per
 * row held in registers, 16-byte accesses) for widths that are multiples of 8 up to {@value #MAX_VECTOR_WIDTH}, 16-byte
 * aligned tensors and power-of-two head dims of at least 8, which covers every Wan model; and generic kernels (a
 * block per row, scalar accesses) for anything else. {@link #generic} always takes the generic ones, for tests
 * that check both against the CPU.
 */
public final class DitKernels {

    private static final String FAMILY = "dit";
    private static final int ROW_THREADS = 256;
    private static final int WARPS_PER_BLOCK = ROW_THREADS / 32;
    private static final int THREADS = 256;
    private static final int BLOCKS_PER_SM = 16;
    private static final int MAX_GRID_X = Integer.MAX_VALUE;
    /** The generic row kernels stage one row of fp32 in shared memory: at most 48 KiB without opting in. */
    static final int MAX_WIDTH = 12 * 1024;
    /** Values per 16-byte chunk of bf16 in the vector kernels. */
    private static final int VEC = 8;
    /** The vector kernels are instantiated for 1 to 8 chunks per lane, with 1 or 4 warps per row. */
    private static final int MAX_CHUNKS_PER_LANE = 8;
    static final int MAX_VECTOR_WIDTH = VEC * MAX_CHUNKS_PER_LANE * 32 * 4;
    /** The most parts one rows-to-heads launch takes (q, k and v). */
    public static final int MAX_HEAD_PARTS = 3;

    private final KernelLibrary library;
    private final boolean vectors;

    public DitKernels(KernelLibrary library) {
        this(library, true);
    }

    private DitKernels(KernelLibrary library, boolean vectors) {
        this.library = Objects.requireNonNull(library, "library");
        this.vectors = vectors;
    }

    /** Kernels that always launch the generic (block per row, scalar) row kernels. */
    public static DitKernels generic(KernelLibrary library) {
        return new DitKernels(library, false);
    }

    /**
     * One part of a rows-to-heads launch: columns [column, column + heads·d) of each row of {@code in} to {@code out}
     * ([B, heads, outPlaneRows, d]), RMS-normalised over those columns and times {@code weight} (F32 [heads·d]) when
     * it is given, rotated by RoPE when {@code rope}.
     */
    public record HeadsPart(DeviceTensor in, int column, DeviceTensor weight, boolean rope, DeviceTensor out) {

        public HeadsPart {
            Objects.requireNonNull(in, "in");
            Objects.requireNonNull(out, "out");
        }
    }

    /**
     * Warps per row and chunks of 8 per lane of the vector kernels for a width, or null when they do not take it;
     * dit.cu instantiates exactly the shapes this returns.
     */
    record RowShape(int warps, int chunksPerLane) {

        static RowShape of(int width) {
            if (width % VEC != 0 || width > MAX_VECTOR_WIDTH) {
                return null;
            }
            int chunks = width / VEC;
            int warps = chunks <= 32 * MAX_CHUNKS_PER_LANE ? 1 : 4;
            return new RowShape(warps, (chunks + 32 * warps - 1) / (32 * warps));
        }

        String suffix() {
            return "_w" + warps + "c" + chunksPerLane;
        }

        int blocks(long rows) {
            int rowsPerBlock = WARPS_PER_BLOCK / warps;
            return (int) ((rows + rowsPerBlock - 1) / rowsPerBlock);
        }
    }

    /** The vector kernels' row shape when they take this width and every address, else null. */
    private RowShape vectorShape(int width, long... addresses) {
        if (!vectors) {
            return null;
        }
        for (long a : addresses) {
            if (a % 16 != 0) {
                return null;
            }
        }
        return RowShape.of(width);
    }

    /**
     * Per-batch-entry vectors of a modulation: an F32 table [B, chunks, width] (shift, scale, gate, ...) and which
     * chunk is which; a chunk of -1 is absent.
     */
    public record Modulation(DeviceTensor table, int gate, int shift, int scale) {

        public Modulation {
            Objects.requireNonNull(table, "table");
            if (table.dtype() != DType.F32 || table.rank() != 3) {
                throw new IllegalArgumentException("a modulation table is F32 [batch, chunks, width], got "
                        + table.dtype() + " " + table.shapeString());
            }
            for (int c : new int[]{gate, shift, scale}) {
                if (c < -1 || c >= table.dim(1)) {
                    throw new IllegalArgumentException("chunk " + c + " outside the table's " + table.dim(1) + " chunks");
                }
            }
            if ((shift < 0) != (scale < 0)) {
                throw new IllegalArgumentException("shift and scale come together, got chunks " + shift + " and " + scale);
            }
        }

        long chunkAddress(int chunk) {
            return chunk < 0 ? 0 : table.buffer().address() + 4L * chunk * table.dim(2);
        }
    }

    /**
     * {@code x += gate · y} (or {@code x += y} without a gate chunk; nothing when y is null), then, when out is given,
     * {@code out = LN(x)} followed by {@code · weight + bias} (when given) and {@code · (1 + scale) + shift} (when the
     * modulation has them). x is F32 or BF16 [rows, width] (a BF16 x is rounded after the add and normalised as
     * rounded), y and out BF16 of x's shape, weight and bias F32 [width].
     */
    public void residualNorm(DeviceTensor x, DeviceTensor y, DeviceTensor out, Modulation mod, DeviceTensor weight,
                             DeviceTensor bias, int rowsPerBatch, float eps, CudaStream stream) {
        Objects.requireNonNull(x, "x");
        int width = x.dim(x.rank() - 1);
        long rows = x.elementCount() / Math.max(1, width);
        if (x.dtype() != DType.F32 && x.dtype() != DType.BF16) {
            throw new IllegalArgumentException("the residual x must be F32 or BF16, got " + x.dtype() + " "
                    + x.shapeString());
        }
        checkWidth(width);
        checkRows(rows, rowsPerBatch);
        if (y != null) {
            requireType(y, DType.BF16, "y");
            requireSameSize(y, x, "y");
        }
        if (out != null) {
            requireType(out, DType.BF16, "out");
            requireSameSize(out, x, "out");
        }
        if ((weight == null) != (bias == null)) {
            throw new IllegalArgumentException("LayerNorm weight and bias come together");
        }
        if (weight != null) {
            requireVector(weight, width, "weight");
            requireVector(bias, width, "bias");
        }
        if (mod != null) {
            if (mod.table.dim(2) != width || mod.table.dim(0) != rows / rowsPerBatch) {
                throw new IllegalArgumentException("modulation table " + mod.table.shapeString() + " must be [" + rows
                        / rowsPerBatch + ", chunks, " + width + "] for " + rows + " rows of " + rowsPerBatch + " per batch entry");
            }
        }
        if (y == null && out == null) {
            throw new IllegalArgumentException("residualNorm with neither y nor out does nothing");
        }
        Kernels.checkContext(library, stream, nonNull(x, y, out, weight, bias, mod == null ? null : mod.table));
        long modStride = mod == null ? 0 : (long) mod.table.dim(1) * width;
        long gate = mod == null ? 0 : mod.chunkAddress(mod.gate), shift = mod == null ? 0 : mod.chunkAddress(mod.shift);
        long scale = mod == null ? 0 : mod.chunkAddress(mod.scale);
        KernelArgs args = KernelArgs.of().pointer(x).i64(address(y)).i64(gate).i64(address(out)).i64(shift).i64(scale)
                .i64(modStride).i64(address(weight)).i64(address(bias)).i32((int) rows).i32(rowsPerBatch).i32(width)
                .f32(eps);
        RowShape shape = vectorShape(width, x.buffer().address(), address(y), address(out), gate, shift, scale,
                address(weight), address(bias), 4 * modStride);
        String entry = "tileattn_dit_residual_norm" + (x.dtype() == DType.BF16 ? "_xbf16" : "");
        if (shape != null) {
            library.function(FAMILY, entry + shape.suffix()).launch(Dim3.of(shape.blocks(rows)),
                    Dim3.of(ROW_THREADS), 0, stream, args);
        } else {
            library.function(FAMILY, entry).launch(Dim3.of((int) rows), Dim3.of(ROW_THREADS),
                    4 * width, stream, args);
        }
    }

    /**
     * Token rows to heads: columns [column, column + heads·d) of each row of {@code in} (BF16 [rows, inWidth]) go to
     * {@code out} (BF16 [B, heads, outPlaneRows, d]) at the token's position, RMS-normalised over those columns and
     * times {@code weight} (F32 [heads·d]) when given, then rotated by RoPE when {@code cos}/{@code sin} (F32
     * [rowsPerBatch, d/2]) are given. outPlaneRows may exceed rowsPerBatch (keys padded for cross-attention).
     */
    public void toHeads(DeviceTensor in, int column, DeviceTensor weight, DeviceTensor cos, DeviceTensor sin,
                        DeviceTensor out, int rowsPerBatch, float eps, CudaStream stream) {
        if ((cos == null) != (sin == null)) {
            throw new IllegalArgumentException("RoPE needs both the cos and the sin table");
        }
        toHeads(List.of(new HeadsPart(in, column, weight, cos != null, out)), cos, sin, rowsPerBatch, eps, stream);
    }

    /**
     * Up to {@value #MAX_HEAD_PARTS} rows-to-heads moves in one launch (e.g. q, k and v out of one fused projection):
     * the parts' inputs have the same number of rows and row width, their outputs the same shape, and the parts
     * that rotate share the RoPE tables {@code cos}/{@code sin} (F32 [rowsPerBatch, d/2]; null when no part rotates).
     */
    public void toHeads(List<HeadsPart> parts, DeviceTensor cos, DeviceTensor sin, int rowsPerBatch, float eps,
                        CudaStream stream) {
        HeadsGeometry g = checkHeads(parts, cos, sin, rowsPerBatch, stream);
        int heads = g.heads, planeRows = g.planeRows, d = g.d, width = g.width, inWidth = g.inWidth;
        long rows = g.rows;
        RowShape shape = headsVectorShape(parts, cos, sin, g);
        if (shape != null) {
            KernelArgs args = headsArgs(parts, cos, sin, inWidth);
            args.i32((int) rows).i32(rowsPerBatch).i32(planeRows).i32(heads).i32(Integer.numberOfTrailingZeros(d)).f32(eps);
            library.function(FAMILY, "tileattn_dit_to_heads" + shape.suffix())
                    .launch(Dim3.of(shape.blocks(rows), parts.size()), Dim3.of(ROW_THREADS), 0, stream, args);
        } else {
            for (HeadsPart part : parts) {
                library.function(FAMILY, "tileattn_dit_to_heads").launch(Dim3.of((int) rows), Dim3.of(ROW_THREADS),
                        4 * width, stream, KernelArgs.of().i64(inAddress(part)).i64(inWidth)
                                .i64(address(part.weight())).i64(part.rope() ? address(cos) : 0)
                                .i64(part.rope() ? address(sin) : 0).pointer(part.out())
                                .i32((int) rows).i32(rowsPerBatch).i32(planeRows).i32(heads).i32(d).f32(eps));
            }
        }
    }

    /**
     * {@link #toHeads(List, DeviceTensor, DeviceTensor, int, float, CudaStream)} of q, k (and v) for VSA, which also
     * writes the tile means of parts 0 and 1 (q and k) into {@code vsa}'s pooled q and k, bit-identical to VSA's
     * pooling pass, which {@link VsaKernels#forwardFine} can then skip. The outputs must be the plan's [B, heads, S,
     * d] in its tile order. Returns false, having launched nothing, where the fused kernel does not apply (widths
     * past 2048 or not multiples of 8, head dims not powers of two, misaligned addresses, more than 48 KiB of row
     * group sums): then call toHeads and let VSA pool.
     */
    public boolean toHeadsPooled(List<HeadsPart> parts, DeviceTensor cos, DeviceTensor sin, int rowsPerBatch, float eps,
                                 VsaWorkspace vsa, CudaStream stream) {
        HeadsGeometry g = checkHeads(parts, cos, sin, rowsPerBatch, stream);
        Objects.requireNonNull(vsa, "vsa");
        VsaPlan plan = vsa.plan();
        if (parts.size() < 2 || plan.batch() != g.batch || plan.heads() != g.heads || vsa.headDim() != g.d
                || plan.grid().videoTokens() != rowsPerBatch || g.planeRows != rowsPerBatch) {
            throw new IllegalArgumentException("pooling into a VSA workspace for " + plan.batch() + " x " + plan.heads()
                    + " heads of d = " + vsa.headDim() + " over " + plan.grid().videoTokens() + " tokens needs q and k "
                    + "parts of that shape, got " + parts.size() + " parts into " + parts.getFirst().out().shapeString());
        }
        Kernels.checkContext(library, stream, vsa.pooledQ, vsa.pooledK);
        RowShape shape = headsVectorShape(parts, cos, sin, g);
        long groupSumBytes = 4L * (1024 / g.d) * g.width;
        if (shape == null || shape.warps() != 1 || groupSumBytes > 48 * 1024) {
            return false;
        }
        KernelArgs args = headsArgs(parts, cos, sin, g.inWidth);
        args.pointer(vsa.pooledQ).pointer(vsa.pooledK).i64(0).pointer(plan.tileStarts()).i32(plan.tiles())
                .i32(rowsPerBatch).i32(g.planeRows).i32(g.heads).i32(Integer.numberOfTrailingZeros(g.d)).f32(eps);
        library.function(FAMILY, "tileattn_dit_to_heads_pooled_c" + shape.chunksPerLane())
                .launch(new Dim3(plan.tiles(), parts.size(), g.batch), Dim3.of(ROW_THREADS), (int) groupSumBytes,
                        stream, args);
        return true;
    }

    private record HeadsGeometry(int batch, int heads, int planeRows, int d, int width, int inWidth, long rows) {
    }

    /** The vector kernels' row shape for these parts, or null (the generic kernel then runs). */
    private RowShape headsVectorShape(List<HeadsPart> parts, DeviceTensor cos, DeviceTensor sin, HeadsGeometry g) {
        // every address the vector kernel reads or writes in 16-byte pieces, and the input's row pitch in bytes
        long[] addresses = new long[3 * parts.size() + 3];
        for (int i = 0; i < parts.size(); i++) {
            addresses[3 * i] = inAddress(parts.get(i));
            addresses[3 * i + 1] = parts.get(i).out().buffer().address();
            addresses[3 * i + 2] = address(parts.get(i).weight());
        }
        addresses[3 * parts.size()] = address(cos);
        addresses[3 * parts.size() + 1] = address(sin);
        addresses[3 * parts.size() + 2] = 2L * g.inWidth;
        return Integer.bitCount(g.d) == 1 && g.d >= VEC ? vectorShape(g.width, addresses) : null;
    }

    /** The vector kernels' arguments up to the outputs: inputs, row pitch, weights, RoPE parts and tables, outputs. */
    private static KernelArgs headsArgs(List<HeadsPart> parts, DeviceTensor cos, DeviceTensor sin, int inWidth) {
        KernelArgs args = KernelArgs.of();
        for (int i = 0; i < MAX_HEAD_PARTS; i++) {
            args.i64(i < parts.size() ? inAddress(parts.get(i)) : 0);
        }
        args.i64(inWidth);
        int ropeParts = 0;
        for (int i = 0; i < MAX_HEAD_PARTS; i++) {
            args.i64(i < parts.size() ? address(parts.get(i).weight()) : 0);
            ropeParts |= i < parts.size() && parts.get(i).rope() ? 1 << i : 0;
        }
        args.i32(ropeParts).i64(address(cos)).i64(address(sin));
        for (int i = 0; i < MAX_HEAD_PARTS; i++) {
            args.i64(i < parts.size() ? parts.get(i).out().buffer().address() : 0);
        }
        return args;
    }

    /** toHeads' argument checks; returns the geometry. */
    private HeadsGeometry checkHeads(List<HeadsPart> parts, DeviceTensor cos, DeviceTensor sin, int rowsPerBatch,
                                     CudaStream stream) {
        Objects.requireNonNull(parts, "parts");
        if (parts.isEmpty() || parts.size() > MAX_HEAD_PARTS) {
            throw new IllegalArgumentException("rows to heads takes 1.." + MAX_HEAD_PARTS + " parts, got " + parts.size());
        }
        HeadsPart first = parts.getFirst();
        DeviceTensor out0 = first.out();
        if (out0.rank() != 4) {
            throw new IllegalArgumentException("out must be [B, heads, S, d], got " + out0.shapeString());
        }
        int batch = out0.dim(0), heads = out0.dim(1), planeRows = out0.dim(2), d = out0.dim(3), width = heads * d;
        int inWidth = first.in().dim(first.in().rank() - 1);
        long rows = first.in().elementCount() / Math.max(1, inWidth);
        checkWidth(width);
        checkRows(rows, rowsPerBatch);
        if (d % 2 != 0) {
            throw new IllegalArgumentException("head dim must be even, got " + d);
        }
        if (rows != (long) batch * rowsPerBatch || planeRows < rowsPerBatch) {
            throw new IllegalArgumentException(rows + " token rows of " + rowsPerBatch + " per batch entry do not fit out "
                    + out0.shapeString());
        }
        boolean anyRope = parts.stream().anyMatch(HeadsPart::rope);
        if (anyRope != (cos != null) || (cos == null) != (sin == null)) {
            throw new IllegalArgumentException(anyRope ? "RoPE needs both the cos and the sin table"
                    : "RoPE tables given but no part rotates");
        }
        if (cos != null) {
            for (DeviceTensor t : new DeviceTensor[]{cos, sin}) {
                requireType(t, DType.F32, "RoPE table");
                if (t.elementCount() != (long) rowsPerBatch * (d / 2)) {
                    throw new IllegalArgumentException("RoPE tables must hold " + rowsPerBatch + " × " + d / 2
                            + " angles, got " + t.shapeString());
                }
            }
        }
        List<DeviceTensor> all = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) {
            HeadsPart part = parts.get(i);
            String name = "part " + i;
            requireType(part.in(), DType.BF16, name + " in");
            requireType(part.out(), DType.BF16, name + " out");
            if (!java.util.Arrays.equals(part.out().shape(), out0.shape())) {
                throw new IllegalArgumentException(name + " out " + part.out().shapeString() + " differs from part 0's "
                        + out0.shapeString());
            }
            if (part.in().dim(part.in().rank() - 1) != inWidth || part.in().elementCount() != rows * inWidth) {
                throw new IllegalArgumentException(name + " in " + part.in().shapeString() + " must be " + rows
                        + " rows of " + inWidth + " as part 0's");
            }
            if (part.column() < 0 || part.column() + width > inWidth) {
                throw new IllegalArgumentException(name + ": columns [" + part.column() + ", " + (part.column() + width)
                        + ") outside rows of " + inWidth);
            }
            if (part.weight() != null) {
                requireVector(part.weight(), width, name + " weight");
            }
            for (HeadsPart other : parts) {
                if (part.out().buffer().overlaps(other.in().buffer())) {
                    throw new IllegalArgumentException(name + " out overlaps an input");
                }
                if (other != part && part.out().buffer().overlaps(other.out().buffer())) {
                    throw new IllegalArgumentException(name + " out overlaps another part's out");
                }
            }
            all.add(part.in());
            all.add(part.out());
            if (part.weight() != null) {
                all.add(part.weight());
            }
        }
        if (cos != null) {
            all.add(cos);
            all.add(sin);
        }
        Kernels.checkContext(library, stream, all.toArray(DeviceTensor[]::new));
        return new HeadsGeometry(batch, heads, planeRows, d, width, inWidth, rows);
    }

    private static long inAddress(HeadsPart part) {
        return part.in().buffer().address() + 2L * part.column();
    }

    /**
     * {@code out[b, n] = bias[n] + Σ_k weight[n, k] · f(in[b, k])} in fp32 for every batch entry, f = SiLU when
     * {@code siluInput}: the time embedding's matrix-vector products. in F32 [B, K], weight F32 [N, K], bias F32
     * [N], out F32 [B, N].
     */
    public void smallLinear(DeviceTensor in, DeviceTensor weight, DeviceTensor bias, DeviceTensor out,
                            boolean siluInput, CudaStream stream) {
        for (DeviceTensor t : new DeviceTensor[]{in, weight, bias, out}) {
            requireType(t, DType.F32, "small linear operand");
        }
        if (weight.rank() != 2) {
            throw new IllegalArgumentException("weight must be [out, in], got " + weight.shapeString());
        }
        int n = weight.dim(0), k = weight.dim(1);
        if (in.dim(in.rank() - 1) != k || out.dim(out.rank() - 1) != n || in.elementCount() / k != out.elementCount() / n
                || bias.elementCount() != n) {
            throw new IllegalArgumentException("small linear: in " + in.shapeString() + ", weight " + weight.shapeString()
                    + ", bias " + bias.shapeString() + ", out " + out.shapeString() + " do not fit [B, K]·[N, K]ᵀ → [B, N]");
        }
        if (out.buffer().overlaps(in.buffer())) {
            throw new IllegalArgumentException("out overlaps in");
        }
        Kernels.checkContext(library, stream, in, weight, bias, out);
        long batch = in.elementCount() / k;
        if (batch > 0) {
            library.function(FAMILY, "tileattn_dit_small_linear").launch(Dim3.of((n + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK),
                    Dim3.of(ROW_THREADS), 0, stream, KernelArgs.of().pointer(in).pointer(weight).pointer(bias)
                            .pointer(out).i32((int) batch).i32(k).i32(n).i32(siluInput ? 1 : 0));
        }
    }

    /**
     * The modulation of every block and of the head, {@code mod} F32 [B, (layers + 1)·chunks, dim]: block l's chunks
     * are {@code blockTables[l]} (F32 [layers, chunks, dim]) plus {@code proj[b]} (F32 [B, chunks·dim]); the head's
     * chunks 0 and 1 are {@code headTable} (F32 [2, dim]) plus {@code temb[b]} (F32 [B, dim]), its other chunks zero.
     */
    public void modulation(DeviceTensor blockTables, DeviceTensor headTable, DeviceTensor proj, DeviceTensor temb,
                           DeviceTensor mod, CudaStream stream) {
        for (DeviceTensor t : new DeviceTensor[]{blockTables, headTable, proj, temb, mod}) {
            requireType(t, DType.F32, "modulation operand");
        }
        if (blockTables.rank() != 3 || mod.rank() != 3) {
            throw new IllegalArgumentException("block tables must be [layers, chunks, dim] and mod [B, (layers + 1)·chunks,"
                    + " dim], got " + blockTables.shapeString() + " and " + mod.shapeString());
        }
        int layers = blockTables.dim(0), chunks = blockTables.dim(1), dim = blockTables.dim(2), batch = mod.dim(0);
        if (chunks < 2 || mod.dim(1) != (layers + 1) * chunks || mod.dim(2) != dim
                || headTable.elementCount() != 2L * dim || proj.elementCount() != (long) batch * chunks * dim
                || temb.elementCount() != (long) batch * dim) {
            throw new IllegalArgumentException("modulation: block tables " + blockTables.shapeString() + ", head table "
                    + headTable.shapeString() + ", proj " + proj.shapeString() + ", temb " + temb.shapeString()
                    + " do not make mod " + mod.shapeString());
        }
        Kernels.checkContext(library, stream, blockTables, headTable, proj, temb, mod);
        library.function(FAMILY, "tileattn_dit_modulation").launch(Dim3.of(blocks(mod.elementCount())), Dim3.of(THREADS),
                0, stream, KernelArgs.of().pointer(blockTables).pointer(headTable).pointer(proj).pointer(temb)
                        .pointer(mod).i32(batch).i32(layers).i32(chunks).i32(dim));
    }

    /**
     * {@code out[r][c] = gate[r] · in[r][c]}, the gate being {@code mod}'s gate chunk of batch entry 0: a gated
     * branch's output weight ([n, k]) or bias ([n]) with the gate folded in, for a product that adds {@code gate ·
     * (x · Wᵀ + b)} to the residual itself ({@link tileattn.blas.Gemm#accumulate}); every batch entry must then have
     * that gate. in is BF16, out of its size in BF16 or F32, not overlapping it.
     */
    public void gateRows(Modulation mod, DeviceTensor in, DeviceTensor out, CudaStream stream) {
        Objects.requireNonNull(mod, "mod");
        Objects.requireNonNull(in, "in");
        Objects.requireNonNull(out, "out");
        int n = mod.table.dim(2);
        if (mod.gate < 0) {
            throw new IllegalArgumentException("gateRows needs a modulation with a gate chunk");
        }
        requireType(in, DType.BF16, "in");
        if (out.dtype() != DType.F32 && out.dtype() != DType.BF16) {
            throw new IllegalArgumentException("out must be F32 or BF16, got " + out.dtype());
        }
        if (in.dim(0) != n || in.rank() > 2 || in.elementCount() != out.elementCount()) {
            throw new IllegalArgumentException("in must be [" + n + "] or [" + n + ", cols] (one row per gate value) and "
                    + "out of its size, got " + in.shapeString() + " and " + out.shapeString());
        }
        if (out.buffer().overlaps(in.buffer()) || out.buffer().overlaps(mod.table.buffer())) {
            throw new IllegalArgumentException("out overlaps in or the modulation table");
        }
        Kernels.checkContext(library, stream, mod.table, in, out);
        int cols = in.rank() == 2 ? in.dim(1) : 1;
        library.function(FAMILY, "tileattn_dit_gate_rows" + (out.dtype() == DType.F32 ? "_f32" : ""))
                .launch(Dim3.of(blocks(in.elementCount())), Dim3.of(THREADS), 0, stream,
                        KernelArgs.of().i64(mod.chunkAddress(mod.gate)).pointer(in).pointer(out).i64(n).i32(cols));
    }

    /** x = GELU(x) (tanh approximation), BF16, in place. */
    public void geluTanh(DeviceTensor x, CudaStream stream) {
        requireType(x, DType.BF16, "x");
        Kernels.checkContext(library, stream, x);
        long n = x.elementCount();
        if (n > 0) {
            library.function(FAMILY, "tileattn_dit_gelu_tanh").launch(Dim3.of(blocks(n)), Dim3.of(THREADS), 0, stream,
                    KernelArgs.of().pointer(x).i64(n));
        }
    }

    /**
     * Latent F32 [B, C, T, H, W] → patch rows BF16 [B·S, C·pt·ph·pw] in the order {@code rasterOfPosition} (int [S] on
     * the device) gives; values channel-major, as the patch embedding's Conv3d weight flattens.
     */
    public void patchify(DeviceTensor latent, DeviceBuffer rasterOfPosition, Shape3 patch, DeviceTensor rows,
                         CudaStream stream) {
        requireType(latent, DType.F32, "latent");
        requireType(rows, DType.BF16, "rows");
        int[] g = patchGeometry(latent, rasterOfPosition, patch, rows, "rows");
        Kernels.checkContext(library, stream, latent, rows);
        library.function(FAMILY, "tileattn_dit_patchify").launch(Dim3.of(blocks(rows.elementCount())), Dim3.of(THREADS),
                0, stream, patchArgs(latent, rows, rasterOfPosition, patch, g, true));
    }

    /** Head rows F32 [B·S, pt·ph·pw·C] (values (i, j, k, c)) → latent F32 [B, C, T, H, W]. */
    public void unpatchify(DeviceTensor rows, DeviceBuffer rasterOfPosition, Shape3 patch, DeviceTensor latent,
                           CudaStream stream) {
        requireType(latent, DType.F32, "latent");
        requireType(rows, DType.F32, "rows");
        int[] g = patchGeometry(latent, rasterOfPosition, patch, rows, "rows");
        Kernels.checkContext(library, stream, latent, rows);
        library.function(FAMILY, "tileattn_dit_unpatchify").launch(Dim3.of(blocks(rows.elementCount())),
                Dim3.of(THREADS), 0, stream, patchArgs(latent, rows, rasterOfPosition, patch, g, false));
    }

    /** {gh, gw, S} after checking that the latent divides into patches and the rows hold one per token. */
    private static int[] patchGeometry(DeviceTensor latent, DeviceBuffer raster, Shape3 patch, DeviceTensor rows,
                                       String name) {
        Objects.requireNonNull(patch, "patch");
        Objects.requireNonNull(raster, "rasterOfPosition");
        if (latent.rank() != 5) {
            throw new IllegalArgumentException("latent must be [B, C, T, H, W], got " + latent.shapeString());
        }
        if (latent.dim(2) % patch.t() != 0 || latent.dim(3) % patch.h() != 0 || latent.dim(4) % patch.w() != 0) {
            throw new IllegalArgumentException("latent " + latent.shapeString() + " is not divisible by the patch " + patch);
        }
        int gt = latent.dim(2) / patch.t(), gh = latent.dim(3) / patch.h(), gw = latent.dim(4) / patch.w();
        int s = gt * gh * gw;
        long width = (long) latent.dim(1) * patch.volume();
        if (rows.elementCount() != (long) latent.dim(0) * s * width || rows.dim(rows.rank() - 1) != width) {
            throw new IllegalArgumentException(name + " " + rows.shapeString() + " must be [" + latent.dim(0) * (long) s
                    + ", " + width + "] for latent " + latent.shapeString() + " and patch " + patch);
        }
        if (raster.bytes() != 4L * s) {
            throw new IllegalArgumentException("rasterOfPosition must hold " + s + " ints, has " + raster.bytes() + " bytes");
        }
        return new int[]{gh, gw, s};
    }

    private static KernelArgs patchArgs(DeviceTensor latent, DeviceTensor rows, DeviceBuffer raster, Shape3 patch,
                                        int[] g, boolean toRows) {
        KernelArgs a = KernelArgs.of();
        if (toRows) {
            a.pointer(latent).pointer(rows);
        } else {
            a.pointer(rows).pointer(latent);
        }
        return a.pointer(raster).i32(latent.dim(0)).i32(latent.dim(1)).i32(latent.dim(2)).i32(latent.dim(3))
                .i32(latent.dim(4)).i32(patch.t()).i32(patch.h()).i32(patch.w()).i32(g[0]).i32(g[1]).i32(g[2]);
    }

    private int blocks(long n) {
        long maxBlocks = (long) BLOCKS_PER_SM * library.context().device().multiprocessors();
        return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, maxBlocks));
    }

    private static long address(DeviceTensor t) {
        return t == null ? 0 : t.buffer().address();
    }

    private static DeviceTensor[] nonNull(DeviceTensor... ts) {
        return java.util.Arrays.stream(ts).filter(Objects::nonNull).toArray(DeviceTensor[]::new);
    }

    private static void requireType(DeviceTensor t, DType type, String name) {
        Objects.requireNonNull(t, name);
        if (t.dtype() != type) {
            throw new IllegalArgumentException(name + " must be " + type + ", got " + t.dtype() + " " + t.shapeString());
        }
    }

    private static void requireSameSize(DeviceTensor t, DeviceTensor x, String name) {
        if (t.elementCount() != x.elementCount() || t.dim(t.rank() - 1) != x.dim(x.rank() - 1)) {
            throw new IllegalArgumentException(name + " " + t.shapeString() + " must have x's shape " + x.shapeString());
        }
    }

    private static void requireVector(DeviceTensor t, int width, String name) {
        requireType(t, DType.F32, name);
        if (t.elementCount() != width) {
            throw new IllegalArgumentException(name + " must hold " + width + " values, got " + t.shapeString());
        }
    }

    static void checkWidth(int width) {
        if (width < 1 || width > MAX_WIDTH) {
            throw new IllegalArgumentException("row width must be 1.." + MAX_WIDTH + " (one row in shared memory), got "
                    + width);
        }
    }

    static void checkRows(long rows, int rowsPerBatch) {
        if (rowsPerBatch < 1 || rows % rowsPerBatch != 0) {
            throw new IllegalArgumentException(rows + " rows are not whole batch entries of " + rowsPerBatch);
        }
        if (rows > MAX_GRID_X) {
            throw new IllegalArgumentException(rows + " rows exceed one block per row (" + MAX_GRID_X + ")");
        }
    }
}
