package tileattn.cli;

import tileattn.tensor.DType;

/** The GPU DiT's residual stream, as {@code --residual} names it. */
enum ResidualStream {
    bf16(DType.BF16), f32(DType.F32);

    static final String DESCRIPTION = "Residual stream on the GPU: bf16 (as diffusers' Wan keeps it) or f32 (a third "
            + "more memory traffic in the residual kernels; default ${DEFAULT-VALUE}).";

    final DType dtype;

    ResidualStream(DType dtype) {
        this.dtype = dtype;
    }
}
