// Raster <-> tile-order permutation of [B, heads, S, d] tensors, S = T*H*W video tokens followed by text tokens.
//
// Tiles are numbered T-major, then H, then W; a tile's tokens are contiguous in raster order and edge tiles
// hold only their real tokens, so the tile-order position of a video token has a closed form (no lookup table):
// every tile of an earlier tile-slab along T is full in H and W, and so on down the axes. Text tokens keep their
// position. Rows (one token's d values) move as units of 2, 4, 8 or 16 bytes, the widest that divides the row
// and the alignment of both tensors, which the Java wrapper picks; the kernels never look at element types.
#include "tileattn/common.cuh"

namespace {

struct VideoTiling {
    int t, h, w;        // video extents in tokens
    int tt, th, tw;     // tile extents in tokens
};

// Tile-order position of raster token r (r < t*h*w).
__device__ __forceinline__ int tile_order_position(int r, const VideoTiling& g) {
    const int x = r % g.w;
    const int rest = r / g.w;
    const int y = rest % g.h;
    const int z = rest / g.h;
    const int iz = z / g.tt, iy = y / g.th, ix = x / g.tw;
    const int a = z - iz * g.tt, b = y - iy * g.th, c = x - ix * g.tw;
    const int et = min(g.tt, g.t - iz * g.tt);
    const int eh = min(g.th, g.h - iy * g.th);
    const int ew = min(g.tw, g.w - ix * g.tw);
    return iz * g.tt * g.h * g.w + et * (iy * g.th * g.w + eh * ix * g.tw) + (a * eh + b) * ew + c;
}

// grid.y strides over the B*heads slices, grid.x over (token, unit) pairs of one slice.
template <typename Unit>
__device__ void permute_rows(const Unit* __restrict__ in, Unit* __restrict__ out, int slices, int seq,
                             VideoTiling g, int units_per_row, bool to_tile_order) {
    const int video = g.t * g.h * g.w;
    const int per_slice = seq * units_per_row;
    for (int slice = blockIdx.y; slice < slices; slice += gridDim.y) {
        const long long base = static_cast<long long>(slice) * seq;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per_slice; i += gridDim.x * blockDim.x) {
            const int r = i / units_per_row;
            const int u = i - r * units_per_row;
            const int p = r < video ? tile_order_position(r, g) : r;
            const int src = to_tile_order ? r : p;
            const int dst = to_tile_order ? p : r;
            out[(base + dst) * units_per_row + u] = in[(base + src) * units_per_row + u];
        }
    }
}

}  // namespace

#define TILEATTN_TILE_ORDER_ENTRY(NAME, UNIT)                                                                 \
    extern "C" __global__ void __launch_bounds__(256) NAME(                                                  \
        const void* in, void* out, int slices, int seq, int t, int h, int w, int tt, int th, int tw,         \
        int units_per_row, int to_tile_order) {                                                               \
        permute_rows<UNIT>(static_cast<const UNIT*>(in), static_cast<UNIT*>(out), slices, seq,               \
                           VideoTiling{t, h, w, tt, th, tw}, units_per_row, to_tile_order != 0);             \
    }

TILEATTN_TILE_ORDER_ENTRY(tileattn_tile_order_u2, unsigned short)
TILEATTN_TILE_ORDER_ENTRY(tileattn_tile_order_u4, unsigned int)
TILEATTN_TILE_ORDER_ENTRY(tileattn_tile_order_u8, uint2)
TILEATTN_TILE_ORDER_ENTRY(tileattn_tile_order_u16, uint4)
