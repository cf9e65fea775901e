package tileattn.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import tileattn.tensor.DType;

/**
 * A CUtensorMap: how the bulk tensor copy engine (Hopper's TMA) reads a tensor in global memory, box by box. Kernels
 * take it by value ({@link KernelArgs#struct} with {@link #ALIGNMENT}); encoding it is a host call that touches no
 * device memory.
 */
public final class TensorMap {

    /** sizeof(CUtensorMap) in cuda.h 13.0. */
    public static final long BYTES = 128;
    public static final long ALIGNMENT = 128;

    // CUtensorMapDataType, CUtensorMapSwizzle and CUtensorMapL2promotion values (cuda.h 13.0).
    static final int DATA_TYPE_FLOAT16 = 6;
    static final int DATA_TYPE_BFLOAT16 = 9;
    static final int SWIZZLE_128B = 3;
    static final int L2_PROMOTION_256B = 3;

    /** The widest box row a 128-byte swizzle allows: 64 elements of 16 bits. */
    public static final int BOX_COLUMNS = 64;

    private TensorMap() {
    }

    /**
     * A row-major [rows, columns] matrix of 16-bit elements at {@code address}, read in boxes of 64 columns x
     * {@code boxRows} rows with 128-byte swizzle: the shared-memory layout of tileattn's wgmma tiles. Boxes past the
     * last row are filled with zeros.
     *
     * @return the 128-byte map, allocated in {@code arena}
     */
    public static MemorySegment rows16(long address, DType dtype, long rows, int columns, int boxRows, Arena arena) {
        if (dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("16-bit tensor maps take BF16 or F16, got " + dtype);
        }
        if (address % 16 != 0) {
            throw new IllegalArgumentException("a tensor map's base must be 16-byte aligned, got 0x" + Long.toHexString(address));
        }
        if (columns % BOX_COLUMNS != 0 || rows < 1 || rows > (1L << 32)) {
            throw new IllegalArgumentException("a [" + rows + ", " + columns + "] matrix: columns must be a multiple of "
                    + BOX_COLUMNS + " and rows between 1 and 2^32");
        }
        if (boxRows < 1 || boxRows > 256) {
            throw new IllegalArgumentException("box rows must be 1 to 256, got " + boxRows);
        }
        MemorySegment map = arena.allocate(BYTES, ALIGNMENT);
        Cuda.driver().tensorMapEncodeTiled(map, dtype == DType.BF16 ? DATA_TYPE_BFLOAT16 : DATA_TYPE_FLOAT16, address,
                new long[]{columns, rows}, new long[]{2L * columns}, new int[]{BOX_COLUMNS, boxRows}, SWIZZLE_128B,
                L2_PROMOTION_256B);
        return map;
    }
}
