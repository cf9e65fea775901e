"""Peer timings for the STA / dense attention BACKWARD benchmark (run on the device machine, PyTorch 2.11).

For each shape: SDPA cuDNN and flash (dense), FlexAttention on the identical token-level STA mask (the mask_mod
of peers_sta.py, which sits beside this script). Each peer is timed as forward+backward and as backward alone
(torch.autograd.grad on a kept graph, so no forward inside the timed region). Medians of CUDA-event timings.
FLOPs: forward 4 * heads * (sum over queries of attended keys) * d; backward 2.5x that; forward+backward 3.5x.

Usage: python3 scripts/peers_bwd.py [--quick]
"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask

from peers_sta import Layout, flex, inputs, time_ms


def grads_timer(fn, q, k, v, d_out):
    """(forward+backward, backward alone) callables for one attention function."""
    def fwd_bwd():
        out = fn(q, k, v)
        torch.autograd.grad(out, (q, k, v), d_out)

    kept = fn(q, k, v)

    def bwd():
        torch.autograd.grad(kept, (q, k, v), d_out, retain_graph=True)

    return fwd_bwd, bwd


def measure(rows, case, peer, fn, q, k, v, d_out, fwd_flops, reps):
    fwd_bwd, bwd = grads_timer(fn, q, k, v, d_out)
    ms_fb = time_ms(fwd_bwd, reps)
    try:
        ms_b = time_ms(bwd, reps)
        how = "kept graph"
    except RuntimeError as e:  # a peer that cannot run backward twice on one graph: fwd+bwd minus fwd
        with torch.no_grad():
            ms_f = time_ms(lambda: fn(q, k, v), reps)
        ms_b = ms_fb - ms_f
        how = f"fwd+bwd - fwd ({str(e).splitlines()[0][:60]})"
    rows.append((case, peer, ms_b, 2.5 * fwd_flops / ms_b / 1e9, ms_fb, 3.5 * fwd_flops / ms_fb / 1e9, how))
    print(*rows[-1], flush=True)


def main():
    quick = "--quick" in sys.argv
    hunyuan = ((30, 48, 80), 24, [(3, 3, 3)])
    wan = ((21, 30, 52), 12, [(3, 3, 3)])
    rows = []
    for video, heads, windows in (hunyuan, wan):
        lay = Layout(video, (6, 8, 8), 0)
        d = 128
        big = lay.S > 100_000
        q, k, v = (x.requires_grad_() for x in inputs(heads, lay.S, d, 1))
        d_out = (torch.rand(1, heads, lay.S, d, device="cuda", generator=torch.Generator(device="cuda").manual_seed(2)) * 2 - 1).bfloat16()
        dense_flops = 4.0 * heads * lay.S * lay.S * d
        for name, backend in (("SDPA cuDNN", SDPBackend.CUDNN_ATTENTION), ("SDPA flash", SDPBackend.FLASH_ATTENTION)):
            with sdpa_kernel(backend):
                measure(rows, f"{video} dense", name, F.scaled_dot_product_attention, q, k, v, d_out, dense_flops,
                        2 if quick or big else 5)
        for window in windows:
            bm = create_block_mask(lay.mask_mod(window, "cuda"), None, None, lay.S, lay.S, device="cuda", BLOCK_SIZE=128,
                                   _compile=True)
            flops = 4.0 * heads * lay.attended(window) * d
            measure(rows, f"{video} STA {window}", "FlexAttention", lambda a, b, c: flex(a, b, c, block_mask=bm), q, k, v,
                    d_out, flops, 3 if quick else 10)
        del q, k, v, d_out
        torch.cuda.empty_cache()
    print(f"\n{'case':<30} {'peer':<14} {'bwd ms':>9} {'TFLOP/s':>8} {'fwd+bwd ms':>11} {'TFLOP/s':>8}  how")
    for case, peer, mb, tb, mfb, tfb, how in rows:
        print(f"{case:<30} {peer:<14} {mb:9.2f} {tb:8.1f} {mfb:11.2f} {tfb:8.1f}  {how}")


if __name__ == "__main__":
    main()
