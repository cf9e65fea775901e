package tileattn.kernels;

import tileattn.cuda.CudaStream;
import tileattn.cuda.DeviceTensor;

/** Argument checks shared by the kernel wrappers. */
final class Kernels {

    private Kernels() {
    }

    /** Tensors, stream and kernels must all live in the library's CUDA context. */
    static void checkContext(KernelLibrary library, CudaStream stream, DeviceTensor... tensors) {
        if (!stream.context().sameContextAs(library.context())) {
            throw new IllegalArgumentException("the stream belongs to another CUDA context than the kernels");
        }
        for (DeviceTensor t : tensors) {
            if (!t.buffer().scope().context().sameContextAs(library.context())) {
                throw new IllegalArgumentException("tensor " + t + " belongs to another CUDA context than the kernels");
            }
        }
    }
}
