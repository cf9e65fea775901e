"""Peer timings for the VSA benchmark (run on the device machine after VsaBenchmark, PyTorch 2.11).

Dense attention through SDPA's cuDNN and flash backends (forward, and forward + backward) at the Wan-2.1 1.3B 480p
sizes, and FlexAttention given a block mask equal to VSA's selection: the selection VsaBenchmark wrote for batch 0
(int32 [heads, tiles, k], one 64-token tile per mask block), so only the padded size, whose tiles are all full,
is run (partial tiles would need a token-level mask_mod). Effective TFLOP/s: forward 4 * heads * S * keys * d,
forward + backward 3.5 times that. Medians of CUDA-event timings.

FlexAttention's forward and forward + backward print on lines of their own, for each mask and kernel option set
tried in turn until one gives a backward (see masks()). --random draws a selection here (39,936 tokens, 78 of 624
tiles per query tile) instead of reading VsaBenchmark's, so no Java output is needed.

Usage: python3 scripts/peers_vsa.py SELECTION_DIR [--flex-only] [--random]
"""
import glob
from functools import partial
import os
import re
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import BlockMask, flex_attention

HEADS, D, TILE = 12, 128, 64


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


def inputs(S, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v, dout = (torch.randn(1, HEADS, S, D, device="cuda", generator=g).bfloat16() for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    return q, k, v, dout


def report(name, S, keys, fwd, fwdbwd):
    flops = 4.0 * HEADS * S * keys * D
    print(f"PEER {name:<34} S={S:<6} fwd {fwd:8.3f} ms {flops / fwd / 1e9:6.0f} TF/s   fwd+bwd {fwdbwd:8.3f} ms "
          f"{3.5 * flops / fwdbwd / 1e9:6.0f} TF/s   bwd {fwdbwd - fwd:8.3f} ms", flush=True)


def dense(backend, name, S):
    q, k, v, dout = inputs(S, S)
    with sdpa_kernel(backend):
        fwd = time_ms(lambda: F.scaled_dot_product_attention(q, k, v), 10)

        def both():
            o = F.scaled_dot_product_attention(q, k, v)
            torch.autograd.grad(o, (q, k, v), dout)

        fwdbwd = time_ms(both, 5)
    report(name, S, S, fwd, fwdbwd)


def load_selection(path):
    m = re.search(r"_S(\d+)_h(\d+)_t(\d+)_k(\d+)\.bin$", path)
    S, heads, tiles, topk = (int(x) for x in m.groups())
    sel = torch.from_file(path, size=heads * tiles * topk, dtype=torch.int32).view(1, heads, tiles, topk).cuda()
    return S, heads, tiles, topk, sel


def random_selection(S, topk, seed=7):
    """A VSA-like selection without Java: per (head, query tile) topk distinct KV tiles drawn at random."""
    tiles = S // TILE
    g = torch.Generator(device="cuda").manual_seed(seed)
    sel = torch.rand(1, HEADS, tiles, tiles, device="cuda", generator=g).argsort(-1)[..., :topk]
    return S, HEADS, tiles, topk, sel.sort(-1).values.to(torch.int32)


def tile_mask(sel, tiles):
    """[heads, tiles, tiles] bool: query tile t reads KV tile j."""
    dense = torch.zeros(sel.shape[1], tiles, tiles, dtype=torch.bool, device="cuda")
    dense.scatter_(2, sel[0].long(), True)
    return dense


def block_lists(chosen):
    """kv_num_blocks and kv_indices ([1, heads, rows, cols]) of a [heads, rows, cols] bool block table."""
    num = chosen.sum(-1, dtype=torch.int32)[None]
    idx = torch.argsort(chosen.to(torch.int8), dim=-1, descending=True, stable=True).to(torch.int32)[None]
    return num, idx.contiguous()


def masks(S, sel, tiles):
    """(label, BlockMask, kernel options) to try in turn. 64-token blocks equal VSA's tiles, but need the kernels'
    tiles at 64 (the defaults are 128): the first set compiled and ran the forward on the lent H100 but gave the
    backward no valid configuration (NoValidChoicesError); then fewer pipeline stages and smaller backward tiles.
    Last, the default 128-token kernel tiles over a mask of paired tiles: a 128x128 block is full when all four of
    its tile pairs are selected, partial (a mask_mod reads the tile table) when some are, so it computes up to 4x
    the selected work in partial blocks and counts as a lower bound for FlexAttention, not a like-for-like peer."""
    heads = sel.shape[1]
    none_num = torch.zeros(1, heads, tiles, dtype=torch.int32, device="cuda")
    none_idx = torch.zeros(1, heads, tiles, tiles, dtype=torch.int32, device="cuda")
    full_num, full_idx = block_lists(tile_mask(sel, tiles))
    exact = BlockMask.from_kv_blocks(none_num, none_idx, full_num, full_idx, BLOCK_SIZE=TILE, seq_lengths=(S, S))
    base = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_M1": 32, "BLOCK_N1": 64, "BLOCK_M2": 64, "BLOCK_N2": 32}
    yield "64-token blocks", exact, base
    yield "64-token blocks, 1 stage", exact, {**base, "num_stages": 1}
    yield "64-token blocks, 32-row bwd tiles, 1 stage", exact, {
        "BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_M1": 32, "BLOCK_N1": 32, "BLOCK_M2": 32, "BLOCK_N2": 32, "num_stages": 1}
    if tiles % 2 == 0:
        dense = tile_mask(sel, tiles)
        pairs = dense.view(heads, tiles // 2, 2, tiles // 2, 2)
        some = pairs.any(4).any(2)
        every = pairs.all(4).all(2)
        part_num, part_idx = block_lists(some & ~every)
        all_num, all_idx = block_lists(every)

        def mask_mod(b, h, q_idx, kv_idx):
            return dense[h, q_idx // TILE, kv_idx // TILE]

        paired = BlockMask.from_kv_blocks(part_num, part_idx, all_num, all_idx, BLOCK_SIZE=2 * TILE,
                                          mask_mod=mask_mod, seq_lengths=(S, S))
        yield "paired tiles, 128-token blocks (default kernel tiles)", paired, None


def flex(S, heads, tiles, topk, sel, name):
    assert heads == HEADS and S == tiles * TILE, "FlexAttention's mask blocks need full 64-token tiles"
    q, k, v, dout = inputs(S, 1)
    flops = 4.0 * HEADS * S * topk * TILE * D
    for label, mask, options in masks(S, sel, tiles):
        compiled = torch.compile(partial(flex_attention, kernel_options=options) if options else flex_attention,
                                 dynamic=False)
        stage = "forward"
        try:
            check(compiled(q, k, v, block_mask=mask).detach(), q, k, v, sel, tiles)
            fwd = time_ms(lambda: compiled(q, k, v, block_mask=mask), 10)
            print(f"PEER FlexAttention fwd     {name}, {label}: S={S} {fwd:8.3f} ms {flops / fwd / 1e9:6.0f} TF/s",
                  flush=True)
            stage = "forward+backward"

            def both():
                o = compiled(q, k, v, block_mask=mask)
                torch.autograd.grad(o, (q, k, v), dout)

            fwdbwd = time_ms(both, 5)
            print(f"PEER FlexAttention fwd+bwd {name}, {label}: S={S} {fwdbwd:8.3f} ms "
                  f"{3.5 * flops / fwdbwd / 1e9:6.0f} TF/s (bwd {fwdbwd - fwd:.3f} ms)", flush=True)
            return
        except Exception as e:  # the next mask / option set, or give up on this peer
            print(f"flex {label} {options}: {stage} failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}",
                  flush=True)
            torch._dynamo.reset()
    print("flex: no mask and kernel option set gave a backward", flush=True)


def check(out, q, k, v, sel, tiles):
    """The mask is VSA's selection: head 0's first and last query tiles against attention over their selected tiles."""
    err = 0.0
    with torch.no_grad():
        for t in (0, tiles - 1):
            keys = torch.cat([torch.arange(j * TILE, (j + 1) * TILE, device="cuda") for j in sel[0, 0, t].tolist()])
            qs = q[0, 0, t * TILE:(t + 1) * TILE].double()
            s = qs @ k[0, 0, keys].double().T / D ** 0.5
            ref = torch.softmax(s, -1) @ v[0, 0, keys].double()
            err = max(err, ((out[0, 0, t * TILE:(t + 1) * TILE].double() - ref).norm() / ref.norm()).item())
    print(f"flex check: relative L2 error {err:.2e} on two query tiles of head 0", flush=True)


def main():
    sel_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}", flush=True)
    for S in () if "--flex-only" in sys.argv else (32760, 39936):
        dense(SDPBackend.CUDNN_ATTENTION, "dense SDPA cuDNN", S)
        dense(SDPBackend.FLASH_ATTENTION, "dense SDPA flash", S)
    if "--random" in sys.argv:  # no VsaBenchmark output needed: 78 random tiles of 624 per query tile
        selections = [(random_selection(39936, 78), "random selection")]
    else:
        selections = [(load_selection(p), "VSA's selection")
                      for p in sorted(glob.glob(os.path.join(sel_dir, "vsa_selection_S*_h*_t*_k*.bin")))
                      if int(re.search(r"_S(\d+)_", p).group(1)) % TILE == 0]
    for (S, heads, tiles, topk, sel), name in selections:
        try:
            flex(S, heads, tiles, topk, sel, name)
        except Exception as e:  # report and go on: the dense peers above still count
            print(f"flex failed on {name} S={S}: {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main()
