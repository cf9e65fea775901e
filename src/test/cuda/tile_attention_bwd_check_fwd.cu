// The forward pass for tile_attention_bwd_check.cu, in a translation unit of its own: the checker needs the
// forward's o and lse as the backward's inputs, and tile_attention.cu defines its own copies of the matrix
// helpers that tile_attention_bwd.cu takes from tileattn/mma_sync.cuh.
#include "../../main/cuda/tile_attention.cu"

#include <cstdio>
#include <cstdlib>

// Launches the portable forward (BM = 128, BN = 64) for bf16 (fp16 = false) or fp16 at d = 64 or 128.
void launch_tile_attention_forward(bool fp16, int d, const void* q, const void* k, const void* v, void* o, float* lse,
                                   const int4* qblocks, const int* listOf, const int* rangeOffsets, const int2* ranges,
                                   int slots, int heads, int S, float scaleLog2, dim3 grid, cudaStream_t stream) {
    using namespace tileattn;
#define FWD(T, D)                                                                                                   \
    {                                                                                                               \
        using C = PortableConfig<D, 64>;                                                                            \
        static bool raised = false;                                                                                 \
        if (!raised) {                                                                                              \
            cudaError_t e = cudaFuncSetAttribute(tile_attention_fwd_kernel<T, C>,                                   \
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);             \
            if (e != cudaSuccess) { std::fprintf(stderr, "forward smem attribute: %s\n", cudaGetErrorString(e)); std::exit(2); } \
            raised = true;                                                                                          \
        }                                                                                                           \
        tile_attention_fwd_kernel<T, C><<<grid, C::THREADS, C::SMEM, stream>>>(                                     \
            static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<T*>(o), lse,  \
            qblocks, listOf, rangeOffsets, ranges, slots, heads, S, scaleLog2);                                     \
        return;                                                                                                     \
    }
    if (!fp16 && d == 64) FWD(__nv_bfloat16, 64)
    if (!fp16 && d == 128) FWD(__nv_bfloat16, 128)
    if (fp16 && d == 64) FWD(__half, 64)
    if (fp16 && d == 128) FWD(__half, 128)
#undef FWD
    std::fprintf(stderr, "no forward for d=%d\n", d);
    std::exit(2);
}
