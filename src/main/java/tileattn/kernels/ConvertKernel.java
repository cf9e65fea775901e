package tileattn.kernels;

import tileattn.cuda.CudaFunction;
import tileattn.cuda.CudaStream;
import tileattn.tensor.DType;
import tileattn.cuda.DeviceScope;
import tileattn.cuda.DeviceTensor;
import tileattn.cuda.Dim3;
import tileattn.cuda.KernelArgs;
import tileattn.tensor.FloatTensor;

/**
 * fp32 ↔ bf16 / fp16 conversion on the GPU (convert.cu), rounding to nearest even; the same bits as
 * {@link DType#encodeHalf} on the host, except that every NaN becomes the GPU's canonical NaN.
 */
public final class ConvertKernel {

    private static final String FAMILY = "convert";
    private static final int THREADS = 256;
    /** Elements one thread converts per loop iteration on the vectorised path. */
    private static final int PER_THREAD = 8;
    /** Grid-stride loops: enough blocks to fill every SM several times over, no more. */
    private static final int BLOCKS_PER_SM = 16;

    private final KernelLibrary library;

    public ConvertKernel(KernelLibrary library) {
        this.library = library;
    }

    /** {@code dst = src} converted; one of them must be F32 and the other F16 or BF16, shapes equal. */
    public void convert(DeviceTensor src, DeviceTensor dst, CudaStream stream) {
        if (!src.sameShape(dst)) {
            throw new IllegalArgumentException("conversion needs equal shapes, got " + src.shapeString() + " and " + dst.shapeString());
        }
        String entry = switch (src.dtype()) {
            case F32 -> switch (dst.dtype()) {
                case BF16 -> "tileattn_convert_f32_to_bf16";
                case F16 -> "tileattn_convert_f32_to_f16";
                case F32 -> throw new IllegalArgumentException("F32 to F32 is a copy, not a conversion; use DeviceBuffer.copyFrom");
            };
            case BF16, F16 -> {
                if (dst.dtype() != DType.F32) {
                    throw new IllegalArgumentException("conversion from " + src.dtype() + " is to F32 only, not " + dst.dtype());
                }
                yield src.dtype() == DType.BF16 ? "tileattn_convert_bf16_to_f32" : "tileattn_convert_f16_to_f32";
            }
        };
        if (src.buffer().overlaps(dst.buffer())) {
            throw new IllegalArgumentException("source and destination overlap");
        }
        Kernels.checkContext(library, stream, src, dst);
        long n = src.elementCount();
        if (n == 0) {
            return;
        }
        CudaFunction fn = library.function(FAMILY, entry);
        long threads = (n + PER_THREAD - 1) / PER_THREAD;
        long maxBlocks = (long) BLOCKS_PER_SM * library.context().device().multiprocessors();
        int blocks = (int) Math.max(1, Math.min((threads + THREADS - 1) / THREADS, maxBlocks));
        fn.launch(Dim3.of(blocks), Dim3.of(THREADS), 0, stream, KernelArgs.of().pointer(src).pointer(dst).i64(n));
    }

    /**
     * Copies a host tensor to the device as fp32 and converts it there to {@code dtype} (F16 or BF16). The
     * fp32 staging copy lives in a temporary scope; the result belongs to {@code scope}. Waits for completion.
     */
    public DeviceTensor upload(DeviceScope scope, FloatTensor host, DType dtype, CudaStream stream) {
        if (dtype == DType.F32) {
            throw new IllegalArgumentException("upload converts to F16 or BF16; for F32 use DeviceTensor.upload");
        }
        DeviceTensor result = scope.allocateTensor(dtype, host.shape());
        try (DeviceScope staging = scope.context().openScope()) {
            DeviceTensor f32 = DeviceTensor.upload(staging, host, DType.F32);
            convert(f32, result, stream);
            stream.synchronize();
        }
        return result;
    }

    /** Converts a F16 or BF16 device tensor to fp32 on the device and copies it to the host. */
    public FloatTensor download(DeviceTensor tensor, CudaStream stream) {
        if (tensor.dtype() == DType.F32) {
            return tensor.download();
        }
        try (DeviceScope staging = tensor.buffer().scope().context().openScope()) {
            DeviceTensor f32 = staging.allocateTensor(DType.F32, tensor.shape());
            convert(tensor, f32, stream);
            stream.synchronize();
            return f32.download();
        }
    }
}
