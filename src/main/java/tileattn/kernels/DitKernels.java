package tileattn.kernels;

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
 * LayerNorm and its modulation or affine, RMSNorm + RoPE + the move to per-head layout, its inverse, tanh-GELU,
 * and the patch embedding's gather and the head's scatter. Token rows are [rows, width] with rows = B · S; the
 * attention kernels' layout is [B, heads, S, d]. Everything is queued on a stream without waiting.
 */
public final class DitKernels {

    private static final String FAMILY = "dit";
    private static final int ROW_THREADS = 256;
    private static final int THREADS = 256;
    private static final int BLOCKS_PER_SM = 16;
    private static final int MAX_GRID_X = Integer.MAX_VALUE;
    /** The row kernels stage one row of fp32 in shared memory: at most 48 KiB without opting in. */
    static final int MAX_WIDTH = 12 * 1024;

    private final KernelLibrary library;

    public DitKernels(KernelLibrary library) {
        this.library = Objects.requireNonNull(library, "library");
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
     * modulation has them). x is F32 [rows, width], y and out BF16 of x's shape, weight and bias F32 [width].
     */
    public void residualNorm(DeviceTensor x, DeviceTensor y, DeviceTensor out, Modulation mod, DeviceTensor weight,
                             DeviceTensor bias, int rowsPerBatch, float eps, CudaStream stream) {
        Objects.requireNonNull(x, "x");
        int width = x.dim(x.rank() - 1);
        long rows = x.elementCount() / Math.max(1, width);
        requireType(x, DType.F32, "x");
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
        library.function(FAMILY, "tileattn_dit_residual_norm").launch(Dim3.of((int) rows), Dim3.of(ROW_THREADS),
                4 * width, stream, KernelArgs.of().pointer(x).i64(address(y))
                        .i64(mod == null ? 0 : mod.chunkAddress(mod.gate)).i64(address(out))
                        .i64(mod == null ? 0 : mod.chunkAddress(mod.shift)).i64(mod == null ? 0 : mod.chunkAddress(mod.scale))
                        .i64(modStride).i64(address(weight)).i64(address(bias))
                        .i32((int) rows).i32(rowsPerBatch).i32(width).f32(eps));
    }

    /**
     * Token rows to heads: columns [column, column + heads·d) of each row of {@code in} (BF16 [rows, inWidth]) go to
     * {@code out} (BF16 [B, heads, outPlaneRows, d]) at the token's position, RMS-normalised over those columns and
     * times {@code weight} (F32 [heads·d]) when given, then rotated by RoPE when {@code cos}/{@code sin} (F32
     * [rowsPerBatch, d/2]) are given. outPlaneRows may exceed rowsPerBatch (keys padded for cross-attention).
     */
    public void toHeads(DeviceTensor in, int column, DeviceTensor weight, DeviceTensor cos, DeviceTensor sin,
                        DeviceTensor out, int rowsPerBatch, float eps, CudaStream stream) {
        Objects.requireNonNull(in, "in");
        Objects.requireNonNull(out, "out");
        requireType(in, DType.BF16, "in");
        requireType(out, DType.BF16, "out");
        if (out.rank() != 4) {
            throw new IllegalArgumentException("out must be [B, heads, S, d], got " + out.shapeString());
        }
        int batch = out.dim(0), heads = out.dim(1), planeRows = out.dim(2), d = out.dim(3), width = heads * d;
        int inWidth = in.dim(in.rank() - 1);
        long rows = in.elementCount() / Math.max(1, inWidth);
        checkWidth(width);
        checkRows(rows, rowsPerBatch);
        if (d % 2 != 0) {
            throw new IllegalArgumentException("head dim must be even, got " + d);
        }
        if (rows != (long) batch * rowsPerBatch || planeRows < rowsPerBatch) {
            throw new IllegalArgumentException(rows + " token rows of " + rowsPerBatch + " per batch entry do not fit out "
                    + out.shapeString());
        }
        if (column < 0 || column + width > inWidth) {
            throw new IllegalArgumentException("columns [" + column + ", " + (column + width) + ") outside rows of "
                    + inWidth);
        }
        if (weight != null) {
            requireVector(weight, width, "weight");
        }
        if ((cos == null) != (sin == null)) {
            throw new IllegalArgumentException("RoPE needs both the cos and the sin table");
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
        if (out.buffer().overlaps(in.buffer())) {
            throw new IllegalArgumentException("out overlaps in");
        }
        Kernels.checkContext(library, stream, nonNull(in, weight, cos, sin, out));
        library.function(FAMILY, "tileattn_dit_to_heads").launch(Dim3.of((int) rows), Dim3.of(ROW_THREADS), 4 * width,
                stream, KernelArgs.of().i64(in.buffer().address() + 2L * column).i64(inWidth).i64(address(weight))
                        .i64(address(cos)).i64(address(sin)).pointer(out)
                        .i32((int) rows).i32(rowsPerBatch).i32(planeRows).i32(heads).i32(d).f32(eps));
    }

    /** Heads [B, heads, S, d] back to token rows (BF16, B·S rows of heads·d). */
    public void fromHeads(DeviceTensor in, DeviceTensor out, CudaStream stream) {
        Objects.requireNonNull(in, "in");
        Objects.requireNonNull(out, "out");
        requireType(in, DType.BF16, "in");
        requireType(out, DType.BF16, "out");
        if (in.rank() != 4) {
            throw new IllegalArgumentException("in must be [B, heads, S, d], got " + in.shapeString());
        }
        int batch = in.dim(0), heads = in.dim(1), s = in.dim(2), d = in.dim(3);
        if (d % 2 != 0 || out.elementCount() != in.elementCount() || out.dim(out.rank() - 1) != heads * d) {
            throw new IllegalArgumentException("out " + out.shapeString() + " must hold " + batch * (long) s
                    + " rows of " + heads * d + " for in " + in.shapeString() + " (even d)");
        }
        checkWidth(heads * d);
        if (out.buffer().overlaps(in.buffer())) {
            throw new IllegalArgumentException("out overlaps in");
        }
        Kernels.checkContext(library, stream, in, out);
        long rows = (long) batch * s;
        checkRows(rows, s);
        library.function(FAMILY, "tileattn_dit_from_heads").launch(Dim3.of((int) rows), Dim3.of(ROW_THREADS), 0, stream,
                KernelArgs.of().pointer(in).pointer(out).i32((int) rows).i32(s).i32(heads).i32(d));
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
