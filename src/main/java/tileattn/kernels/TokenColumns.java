package tileattn.kernels;

import java.util.Objects;
import tileattn.cuda.DeviceTensor;

/**
 * A per-head attention input given as token rows rather than planes: token s of batch entry b is row b·S + s of
 * {@code rows} ([B·S, width]), and head h's d values start at column {@code column + h·d}. The forward kernels read V
 * this way straight out of a fused q, k, v projection's output, so no pass lays V out per head.
 */
public record TokenColumns(DeviceTensor rows, int column) {

    public TokenColumns {
        Objects.requireNonNull(rows, "rows");
        if (rows.rank() != 2) {
            throw new IllegalArgumentException("token rows must be [B·S, width], got " + rows.shapeString());
        }
        if (column < 0) {
            throw new IllegalArgumentException("column must not be negative, got " + column);
        }
    }

    /** The device address of token 0's first column. */
    long address() {
        return rows.buffer().address() + (long) column * rows.dtype().bytes();
    }

    /** Elements from one token's row to the next. */
    int rowStride() {
        return rows.dim(1);
    }

    /**
     * Checks that these rows hold q's [B, heads, S, d] layout as columns: B·S rows, heads·d columns from
     * {@code column}, q's element type, and every head's row 16-byte aligned (the kernels copy 16-byte pieces).
     */
    void checkLike(DeviceTensor q, String name) {
        long tokens = (long) q.dim(0) * q.dim(2), columns = (long) q.dim(1) * q.dim(3);
        if (rows.dim(0) != tokens || column + columns > rows.dim(1)) {
            throw new IllegalArgumentException(name + " as token rows " + rows.shapeString() + " from column " + column
                    + " must hold " + tokens + " rows of " + columns + " columns (q is " + q.shapeString() + ")");
        }
        if (rows.dtype() != q.dtype()) {
            throw new IllegalArgumentException("q is " + q.dtype() + " but " + name + " is " + rows.dtype());
        }
        if (address() % 16 != 0 || (long) rowStride() * rows.dtype().bytes() % 16 != 0) {
            throw new IllegalArgumentException(name + "'s rows must start 16-byte aligned (the kernels copy rows in "
                    + "16-byte pieces): " + rows + " from column " + column);
        }
    }
}
