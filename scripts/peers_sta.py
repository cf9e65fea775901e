"""Peer timings for the STA / dense attention benchmark (run on the device machine, PyTorch 2.11).

SDPA flash and cuDNN backends for dense attention, and FlexAttention with a block mask that expresses the exact
token-level STA mask over tile-ordered tokens (tile-of-token lookup tensors, so partial edge tiles stay exact).
Prints one line per case: milliseconds (median of CUDA-event timings) and effective TFLOP/s, where the FLOPs are
4 * heads * (sum over queries of attended keys) * d.

Usage: python3 scripts/peers_sta.py [--quick] [--short] [--tsv FILE]
  --short     only SDPA cuDNN (dense) and FlexAttention at window 3x3x3, no self-check (the Hopper issue's peers)
  --tsv FILE  also write the rows as tab-separated values (case, peer, ms, tflops); the case ids are those of
              `tileattn bench gpu` (e.g. hunyuan-sta-3x3x3, wan-dense), so scripts/device-bench.sh can join them.
"""
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

torch._dynamo.config.cache_size_limit = 64
flex = torch.compile(flex_attention, dynamic=False)


def ceil_div(a, b):
    return (a + b - 1) // b


class Layout:
    """Tile grid of a video in tile order, with STA windows clamped at the edges (the Foundation rule)."""

    def __init__(self, video, tile, text):
        self.video, self.tile, self.text = video, tile, text
        self.n = [ceil_div(video[a], tile[a]) for a in range(3)]
        self.tiles = self.n[0] * self.n[1] * self.n[2]
        self.coords = [(i // (self.n[1] * self.n[2]), i // self.n[2] % self.n[1], i % self.n[2]) for i in range(self.tiles)]
        self.sizes = [math.prod(min(tile[a], video[a] - c[a] * tile[a]) for a in range(3)) for c in self.coords]
        self.V = sum(self.sizes)
        self.S = self.V + text

    def allowed_tiles(self, window, q):
        out = []
        for k in range(self.tiles):
            ok = True
            for a in range(3):
                K, N = window[a], self.n[a]
                if K == N:
                    continue
                half = K // 2
                c = min(max(self.coords[q][a], half), N - 1 - half)
                ok &= abs(c - self.coords[k][a]) <= half
            if ok:
                out.append(k)
        return out

    def attended(self, window):
        """Sum over all query rows of the number of keys each attends (video->window+text, text->all)."""
        total = 0
        for q in range(self.tiles):
            keys = sum(self.sizes[k] for k in self.allowed_tiles(window, q)) + self.text
            total += self.sizes[q] * keys
        return total + self.text * self.S

    def mask_mod(self, window, device):
        tile_of = torch.zeros(self.S, dtype=torch.int32)
        pos = 0
        for t, n in enumerate(self.sizes):
            tile_of[pos:pos + n] = t
            pos += n
        coord = torch.tensor(self.coords, dtype=torch.int32)
        centre = torch.empty_like(coord)
        half = torch.empty(3, dtype=torch.int32)
        for a in range(3):
            K, N = window[a], self.n[a]
            h = K // 2 if K < N else 1 << 20
            half[a] = h
            centre[:, a] = coord[:, a] if K == N else coord[:, a].clamp(h, N - 1 - h)
        tile_of, coord, centre, half = (x.to(device) for x in (tile_of, coord, centre, half))
        V = self.V
        ct, ch, cw = (centre[:, a].contiguous() for a in range(3))
        kt_, kh_, kw_ = (coord[:, a].contiguous() for a in range(3))

        def sta(b, h, q_idx, kv_idx):
            qt = tile_of[q_idx]
            kt = tile_of[kv_idx]
            inside = ((ct[qt] - kt_[kt]).abs() <= half[0]) & ((ch[qt] - kh_[kt]).abs() <= half[1]) & (
                (cw[qt] - kw_[kt]).abs() <= half[2])
            return inside | (q_idx >= V) | (kv_idx >= V)

        return sta


def time_ms(fn, reps):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def inputs(heads, S, d, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q = (torch.rand(1, heads, S, d, device="cuda", generator=g) * 4 - 2).bfloat16()
    k = (torch.rand(1, heads, S, d, device="cuda", generator=g) * 4 - 2).bfloat16()
    v = (torch.rand(1, heads, S, d, device="cuda", generator=g) * 2 - 1).bfloat16()
    return q, k, v


def self_check():
    """FlexAttention with this mask_mod equals SDPA (math) with the materialised token mask on a small odd shape."""
    lay = Layout((9, 10, 11), (4, 4, 4), 5)
    window = (3, 1, 3)
    q, k, v = inputs(2, lay.S, 64, 7)
    dense = torch.zeros(lay.S, lay.S, dtype=torch.bool)
    starts = [0]
    for n in lay.sizes:
        starts.append(starts[-1] + n)
    for qt in range(lay.tiles):
        for kt in lay.allowed_tiles(window, qt):
            dense[starts[qt]:starts[qt + 1], starts[kt]:starts[kt + 1]] = True
    dense[:, lay.V:] = True
    dense[lay.V:, :] = True
    bm = create_block_mask(lay.mask_mod(window, "cuda"), None, None, lay.S, lay.S, device="cuda", BLOCK_SIZE=128, _compile=True)
    got = flex(q, k, v, block_mask=bm).float()
    with sdpa_kernel(SDPBackend.MATH):
        ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=dense.cuda()).float()
    rel = ((got - ref).norm() / ref.norm()).item()
    print(f"self-check FlexAttention mask_mod vs materialised mask: relL2 {rel:.2e} {'ok' if rel < 1e-2 else 'FAIL'}", flush=True)


def case_id(model, lay, window):
    """The case id `tileattn bench gpu` uses: model-dense, model-sta-full (window = grid), model-sta-TxHxW[-textL]."""
    if window is None:
        return f"{model}-dense"
    name = "full" if list(window) == lay.n else "x".join(map(str, window))
    return f"{model}-sta-{name}" + (f"-text{lay.text}" if lay.text else "")


def main():
    quick = "--quick" in sys.argv
    short = "--short" in sys.argv
    tsv = sys.argv[sys.argv.index("--tsv") + 1] if "--tsv" in sys.argv else None
    if not short:
        self_check()
    # (model, video, heads, text, windows): SDPA runs dense for text 0; FlexAttention runs every window
    shapes = [("hunyuan", (30, 48, 80), 24, 0, [(3, 3, 3), (3, 6, 10), (5, 6, 10)]),
              ("hunyuan", (30, 48, 80), 24, 256, [(3, 3, 3)]),
              ("wan", (21, 30, 52), 12, 0, [(3, 3, 3), (4, 4, 7)])]
    dense_peers = [("SDPA flash", SDPBackend.FLASH_ATTENTION), ("SDPA cuDNN", SDPBackend.CUDNN_ATTENTION)]
    if short:
        shapes = [(m, video, heads, text, [(3, 3, 3)]) for m, video, heads, text, _ in shapes if text == 0]
        dense_peers = dense_peers[1:]
    rows = []
    for model, video, heads, text, windows in shapes:
        lay = Layout(video, (6, 8, 8), text)
        d = 128
        q, k, v = inputs(heads, lay.S, d, 1)
        dense_flops = 4.0 * heads * lay.S * lay.S * d
        if text == 0:
            for name, backend in dense_peers:
                with sdpa_kernel(backend):
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), 3 if quick else 5)
                rows.append((case_id(model, lay, None), name, ms, dense_flops / ms / 1e9))
                print(*rows[-1], flush=True)
        for window in windows:
            bm = create_block_mask(lay.mask_mod(window, "cuda"), None, None, lay.S, lay.S, device="cuda", BLOCK_SIZE=128,
                                   _compile=True)
            flops = 4.0 * heads * lay.attended(window) * d
            ms = time_ms(lambda: flex(q, k, v, block_mask=bm), 3 if quick else (10 if flops < 1e14 else 5))
            rows.append((case_id(model, lay, window), "FlexAttention", ms, flops / ms / 1e9))
            print(*rows[-1], flush=True)
        del q, k, v
        torch.cuda.empty_cache()
    print(f"\n{'case':<34} {'peer':<14} {'ms':>9} {'TFLOP/s':>8}")
    for case, peer, ms, tf in rows:
        print(f"{case:<34} {peer:<14} {ms:9.2f} {tf:8.1f}")
    if tsv:
        with open(tsv, "w") as f:
            f.write("case\tpeer\tms\ttflops\n")
            for case, peer, ms, tf in rows:
                f.write(f"{case}\t{peer}\t{ms:.4f}\t{tf:.2f}\n")
            f.write(f"# torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
                    f"{torch.cuda.get_device_name(0)}\n")


if __name__ == "__main__":
    main()
