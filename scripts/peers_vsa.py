"""Peer timings for the VSA benchmark (run on the device machine after VsaBenchmark, PyTorch 2.11).

Dense attention through SDPA's cuDNN and flash backends (forward, and forward + backward) at the Wan-2.1 1.3B 480p
sizes, and FlexAttention given a block mask equal to VSA's selection: the selection VsaBenchmark wrote for batch 0
(int32 [heads, tiles, k], one 64-token tile per mask block), so only the padded size, whose tiles are all full,
is run (partial tiles would need a token-level mask_mod). Effective TFLOP/s: forward 4 * heads * S * keys * d,
forward + backward 3.5 times that. Medians of CUDA-event timings.

Usage: python3 scripts/peers_vsa.py SELECTION_DIR [--flex-only]
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


def flex(path):
    m = re.search(r"_S(\d+)_h(\d+)_t(\d+)_k(\d+)\.bin$", path)
    S, heads, tiles, topk = (int(x) for x in m.groups())
    assert heads == HEADS and S == tiles * TILE, "FlexAttention's mask blocks need full 64-token tiles"
    sel = torch.from_file(path, size=heads * tiles * topk, dtype=torch.int32).view(1, heads, tiles, topk).cuda()
    full_idx = torch.zeros(1, heads, tiles, tiles, dtype=torch.int32, device="cuda")
    full_idx[..., :topk] = sel
    full_num = torch.full((1, heads, tiles), topk, dtype=torch.int32, device="cuda")
    none_num = torch.zeros(1, heads, tiles, dtype=torch.int32, device="cuda")
    none_idx = torch.zeros(1, heads, tiles, tiles, dtype=torch.int32, device="cuda")
    mask = BlockMask.from_kv_blocks(none_num, none_idx, full_num, full_idx, BLOCK_SIZE=TILE, seq_lengths=(S, S))
    q, k, v, dout = inputs(S, 1)
    # The mask's 64-token blocks must be multiples of the kernels' tiles (the defaults are 128). The first set compiled
    # and ran the forward on the lent H100 but gave the backward no valid configuration (NoValidChoicesError); the
    # others, fewer pipeline stages and smaller backward tiles, are untried fallbacks.
    base = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_M1": 32, "BLOCK_N1": 64, "BLOCK_M2": 64, "BLOCK_N2": 32}
    candidates = [base, {**base, "num_stages": 1},
                  {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_M1": 32, "BLOCK_N1": 32, "BLOCK_M2": 32, "BLOCK_N2": 32,
                   "num_stages": 1}]
    fwd = None
    for options in candidates:
        compiled = torch.compile(partial(flex_attention, kernel_options=options), dynamic=False)
        try:
            if fwd is None:
                check(compiled(q, k, v, block_mask=mask).detach(), q, k, v, sel, tiles)
                fwd = time_ms(lambda: compiled(q, k, v, block_mask=mask), 10)
                print(f"PEER FlexAttention, VSA's selection S={S} fwd {fwd:8.3f} ms "
                      f"{4.0 * HEADS * S * topk * TILE * D / fwd / 1e9:6.0f} TF/s", flush=True)

            def both():
                o = compiled(q, k, v, block_mask=mask)
                torch.autograd.grad(o, (q, k, v), dout)

            fwdbwd = time_ms(both, 5)
        except Exception as e:  # the next option set, or give up on this peer
            print(f"flex with {options}: {type(e).__name__}: {str(e).splitlines()[0][:300]}", flush=True)
            torch._dynamo.reset()
            continue
        report("FlexAttention, VSA's selection", S, topk * TILE, fwd, fwdbwd)
        return
    print("flex: no kernel option set gave a backward", flush=True)


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
    for path in sorted(glob.glob(os.path.join(sel_dir, "vsa_selection_S*_h*_t*_k*.bin"))):
        m = re.search(r"_S(\d+)_", path)
        if int(m.group(1)) % TILE == 0:
            try:
                flex(path)
            except Exception as e:  # report and go on: the dense peers above still count
                print(f"flex failed on {path}: {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main()
