package tileattn.api;

import tileattn.tensor.DType;
import tileattn.cuda.DeviceTensor;

/** The checks {@link GpuBackend} runs on device tensors before any launch; each failure names the tensor at fault. */
final class DeviceInputChecks {

    private DeviceInputChecks() {
    }

    /** q, k, v (and out, when given) are [B, heads, S, d] of one shape and one 16-bit element type. */
    static void tensors(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out) {
        DeviceTensor[] all = {q, k, v, out};
        String[] names = {"q", "k", "v", "out"};
        int count = out == null ? 3 : 4;
        for (int i = 0; i < count; i++) {
            if (all[i] == null) {
                throw new IllegalArgumentException(names[i] + " is null");
            }
        }
        if (q.rank() != 4) {
            throw new IllegalArgumentException("q must have rank 4 [batch, heads, S, d], got shape " + q.shapeString());
        }
        for (int i = 1; i < count; i++) {
            if (!all[i].sameShape(q)) {
                throw new IllegalArgumentException("q is " + q.shapeString() + " but " + names[i] + " is "
                        + all[i].shapeString() + "; q, k, v and out must have one shape [batch, heads, S, d]");
            }
        }
        String[] axes = {"batch", "heads", "S", "d"};
        for (int a = 0; a < 4; a++) {
            if (q.dim(a) < 1) {
                throw new IllegalArgumentException(axes[a] + " must be > 0, got shape " + q.shapeString());
            }
        }
        if (q.dtype() != DType.BF16 && q.dtype() != DType.F16) {
            throw new IllegalArgumentException("GPU attention takes BF16 or F16 device tensors, q is " + q.dtype());
        }
        for (int i = 1; i < count; i++) {
            if (all[i].dtype() != q.dtype()) {
                throw new IllegalArgumentException("q is " + q.dtype() + " but " + names[i] + " is " + all[i].dtype()
                        + "; q, k, v and out must have one element type");
            }
        }
        headDim(q.dim(3));
    }

    /** out is token rows [B, S, heads·d] of q's element type. */
    static void tokenRows(DeviceTensor q, DeviceTensor out) {
        if (out.rank() != 3 || out.dim(0) != q.dim(0) || out.dim(1) != q.dim(2)
                || (long) out.dim(2) != (long) q.dim(1) * q.dim(3)) {
            throw new IllegalArgumentException("token-row out must be [" + q.dim(0) + ", " + q.dim(2) + ", "
                    + (long) q.dim(1) * q.dim(3) + "] for q " + q.shapeString() + ", got " + out.shapeString());
        }
        if (out.dtype() != q.dtype()) {
            throw new IllegalArgumentException("q is " + q.dtype() + " but out is " + out.dtype()
                    + "; q, k, v and out must have one element type");
        }
    }

    static void headDim(int d) {
        if (d != 64 && d != 128) {
            throw new IllegalArgumentException("the GPU kernels support head dim d = 64 or 128, got " + d);
        }
    }
}
