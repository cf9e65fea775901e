package tileattn.kernels;

import tileattn.cuda.CudaFunction;
import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.KernelArgs;
import tileattn.layout.Shape3;
import tileattn.layout.TokenLayout;

/**
 * Moves [B, heads, S, d] tensors between raster order and tile order on the GPU (layout.cu), the permutation of
 * {@link TokenLayout#rasterToTileOrder()}: video tokens are regrouped tile by tile (partial edge tiles included),
 * text tokens stay where they are. Works for every element type; rows move in the widest unit (2 to 16 bytes)
 * that the row size and the alignment of both tensors allow. Source and destination must not overlap.
 */
public final class TileOrderKernel {

    private static final String FAMILY = "layout";
    private static final int THREADS = 256;
    private static final int MAX_GRID_Y = 65535;

    private final KernelLibrary library;

    public TileOrderKernel(KernelLibrary library) {
        this.library = library;
    }

    /** {@code tileOrder[b, h, perm[r], :] = raster[b, h, r, :]}. */
    public void toTileOrder(DeviceTensor raster, DeviceTensor tileOrder, TokenLayout layout, CudaStream stream) {
        launch(raster, tileOrder, layout, stream, true);
    }

    /** The inverse: {@code raster[b, h, r, :] = tileOrder[b, h, perm[r], :]}. */
    public void toRaster(DeviceTensor tileOrder, DeviceTensor raster, TokenLayout layout, CudaStream stream) {
        launch(tileOrder, raster, layout, stream, false);
    }

    private void launch(DeviceTensor in, DeviceTensor out, TokenLayout layout, CudaStream stream, boolean toTileOrder) {
        if (in.rank() != 4 || out.rank() != 4) {
            throw new IllegalArgumentException("tile-order permutation needs [B, heads, S, d] tensors, got "
                    + in.shapeString() + " and " + out.shapeString());
        }
        if (!in.sameShape(out)) {
            throw new IllegalArgumentException("source " + in.shapeString() + " and destination "
                    + out.shapeString() + " shapes differ");
        }
        if (in.dtype() != out.dtype()) {
            throw new IllegalArgumentException("source is " + in.dtype() + " but destination is " + out.dtype());
        }
        int seq = in.dim(2);
        if (seq != layout.sequenceLength()) {
            throw new IllegalArgumentException("tensor has S = " + seq + " tokens but the layout has "
                    + layout.videoTokens() + " video + " + layout.textLength() + " text = " + layout.sequenceLength());
        }
        if (in.buffer().overlaps(out.buffer())) {
            throw new IllegalArgumentException("source and destination overlap; the permutation cannot run in place");
        }
        Kernels.checkContext(library, stream, in, out);
        long slices = (long) in.dim(0) * in.dim(1);
        long rowBytes = (long) in.dim(3) * in.dtype().bytes();
        if (slices == 0 || rowBytes == 0) {
            return;
        }
        if (slices > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("B * heads = " + slices + " exceeds 2^31 - 1");
        }
        int unit = 16;
        while (rowBytes % unit != 0 || in.buffer().address() % unit != 0 || out.buffer().address() % unit != 0) {
            unit /= 2;
        }
        long unitsPerRow = rowBytes / unit;
        long perSlice = unitsPerRow * seq;
        if (perSlice > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("S * d = " + seq + " * " + in.dim(3) + " is too large for one slice ("
                    + perSlice + " units of " + unit + " bytes, limit 2^31 - 1)");
        }
        CudaFunction fn = library.function(FAMILY, "tileattn_tile_order_u" + unit);
        Shape3 video = layout.grid().video();
        Shape3 tile = layout.grid().tile();
        int blocksX = (int) ((perSlice + THREADS - 1) / THREADS);
        int blocksY = (int) Math.min(slices, MAX_GRID_Y);
        fn.launch(Dim3.of(blocksX, blocksY), Dim3.of(THREADS), 0, stream, KernelArgs.of()
                .pointer(in).pointer(out)
                .i32((int) slices).i32(seq)
                .i32(video.t()).i32(video.h()).i32(video.w())
                .i32(tile.t()).i32(tile.h()).i32(tile.w())
                .i32((int) unitsPerRow).i32(toTileOrder ? 1 : 0));
    }
}
