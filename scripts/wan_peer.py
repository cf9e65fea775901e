#!/usr/bin/env python3
"""The Wan-2.1 text-to-video transformer in PyTorch: tileattn's peer for step timings, and a reference dump.

Written for tileattn from the published architecture (diffusers' WanTransformer3DModel parameter layout, so its
state_dict names are those of the diffusers checkpoints). Two commands:

  bench  Times one transformer step (one forward of the conditional and unconditional batch) on a CUDA GPU with
         random bf16 weights, self- and cross-attention through SDPA restricted to the cuDNN backend, eager and
         torch.compile. Reports the median step time and the self-attention share of it: in eager mode from CUDA
         events around every attention call, in both modes from a second run with the self-attention replaced by
         a no-op (share = 1 - t_without / t_with).

           python3 scripts/wan_peer.py bench                  # Wan-2.1 1.3B at 480p: 21x60x104 latent, 512 text
           python3 scripts/wan_peer.py bench --modes eager --iters 3 --latent 21,30,52

  dump   Writes a reference for the Java model: random weights (rounded to bf16 so the file is exact), random
         inputs, and the forward's output and intermediates computed in float64 with exact softmax attention.
         Runs on the CPU (no GPU or recent PyTorch needed).

           python3 scripts/wan_peer.py dump --out /tmp/peer-tiny --config tiny --seed 0
           mvn -o test -Dtest=PeerAgreementTest -Dtileattn.peerDump=/tmp/peer-tiny

         Files: OUT/transformer/{config.json, diffusion_pytorch_model.safetensors} (diffusers layout, BF16),
         OUT/inputs.safetensors (latent [B,16,T,H,W], timestep [B], context [B,L,text_dim]; F32) and
         OUT/outputs.safetensors (velocity [B,16,T,H,W]; patch_tokens, temb, timestep_proj, text and block_<i>
         [B,S,dim] in raster token order; F32).
"""

import argparse
import json
import math
import os
import statistics
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "wan-1.3b": dict(dim=1536, layers=30, heads=12, ffn=8960, in_channels=16, out_channels=16, patch=(1, 2, 2),
                     text_dim=4096, text_len=512, freq_dim=256, eps=1e-6, theta=10000.0),
    "tiny": dict(dim=64, layers=2, heads=2, ffn=128, in_channels=16, out_channels=16, patch=(1, 2, 2),
                 text_dim=32, text_len=16, freq_dim=256, eps=1e-6, theta=10000.0),
}


def wide(x):
    """At least float32 (float64 stays float64): norms and modulation run wide, as Wan runs them in fp32."""
    return x if x.dtype == torch.float64 else x.float()


class RMSNorm(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        xw = wide(x)
        y = xw * torch.rsqrt(xw.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * wide(self.weight)).to(x.dtype)


class WanAttention(nn.Module):
    """q, k, v projections with RMSNorm of q and k over the whole hidden width, optional RoPE, attention, output."""

    def __init__(self, dim, heads, eps):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)

    def forward(self, x, attend, context=None, rope=None):
        src = x if context is None else context
        b = x.shape[0]
        q = self.norm_q(self.to_q(x)).unflatten(2, (self.heads, -1)).transpose(1, 2)
        k = self.norm_k(self.to_k(src)).unflatten(2, (self.heads, -1)).transpose(1, 2)
        v = self.to_v(src).unflatten(2, (self.heads, -1)).transpose(1, 2)
        if rope is not None:
            q = apply_rope(q, rope)
            k = apply_rope(k, rope)
        o = attend(q, k, v)
        return self.to_out[0](o.transpose(1, 2).reshape(b, -1, q.shape[1] * q.shape[3]))


class GeluProj(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x):
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.net = nn.ModuleList([GeluProj(dim, inner), nn.Identity(), nn.Linear(inner, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class WanBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim = cfg["dim"]
        self.eps = cfg["eps"]
        self.attn1 = WanAttention(dim, cfg["heads"], cfg["eps"])
        self.attn2 = WanAttention(dim, cfg["heads"], cfg["eps"])
        self.norm2 = nn.LayerNorm(dim, eps=cfg["eps"], elementwise_affine=True)
        self.ffn = FeedForward(dim, cfg["ffn"])
        self.scale_shift_table = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x, text, tproj, rope, self_attend, cross_attend):
        shift1, scale1, gate1, shift2, scale2, gate2 = (wide(self.scale_shift_table) + tproj).chunk(6, dim=1)
        dim = x.shape[-1]
        h = (F.layer_norm(wide(x), (dim,), eps=self.eps) * (1 + scale1) + shift1).to(x.dtype)
        x = (wide(x) + self.attn1(h, self_attend, rope=rope) * gate1).to(x.dtype)
        h = F.layer_norm(wide(x), (dim,), wide(self.norm2.weight), wide(self.norm2.bias), self.eps).to(x.dtype)
        x = x + self.attn2(h, cross_attend, context=text)
        h = (F.layer_norm(wide(x), (dim,), eps=self.eps) * (1 + scale2) + shift2).to(x.dtype)
        return (wide(x) + wide(self.ffn(h)) * gate2).to(x.dtype)


class TimeEmbedder(nn.Module):
    def __init__(self, freq_dim, dim):
        super().__init__()
        self.linear_1 = nn.Linear(freq_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class TextEmbedder(nn.Module):
    def __init__(self, text_dim, dim):
        super().__init__()
        self.linear_1 = nn.Linear(text_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))


class ConditionEmbedder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.time_embedder = TimeEmbedder(cfg["freq_dim"], cfg["dim"])
        self.time_proj = nn.Linear(cfg["dim"], 6 * cfg["dim"])
        self.text_embedder = TextEmbedder(cfg["text_dim"], cfg["dim"])


def sinusoid(t, width):
    """[cos(t f_i), sin(t f_i)] with f_i = 10000^(-i/half), computed in float64."""
    half = width // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def rope_tables(cfg, grid, device):
    """cos and sin [S, d/2] for tokens in raster order; pairs split (p - 2*(p//3), p//3, p//3) over T, H, W."""
    pairs = cfg["dim"] // cfg["heads"] // 2
    split = (pairs - 2 * (pairs // 3), pairs // 3, pairs // 3)
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in grid], indexing="ij"), -1)
    coords = coords.reshape(-1, 3)
    angles = []
    for axis, n in enumerate(split):
        freqs = torch.pow(cfg["theta"], -torch.arange(n, dtype=torch.float64) / n)
        angles.append(coords[:, axis:axis + 1] * freqs[None, :])
    angles = torch.cat(angles, dim=1)
    return torch.cos(angles).to(device), torch.sin(angles).to(device)


def apply_rope(x, rope):
    """Rotates the pairs (x[2i], x[2i+1]) of x [B, heads, S, d] by the tables' angles."""
    cos, sin = rope
    xw = x.to(torch.promote_types(x.dtype, cos.dtype)) if x.dtype == torch.float64 else x.float()
    cos, sin = cos.to(xw.dtype), sin.to(xw.dtype)
    x0, x1 = xw.unflatten(-1, (-1, 2)).unbind(-1)
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)
    return out.to(x.dtype)


def exact_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v in the inputs' precision, for the reference dump."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


def sdpa_attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def no_attention(q, k, v):
    """Stands in for an attention to measure the step without it; keeps the output's shape and dependence."""
    return v if q.shape[2] == v.shape[2] else q


class WanPeer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        dim, patch = cfg["dim"], cfg["patch"]
        self.patch_embedding = nn.Conv3d(cfg["in_channels"], dim, kernel_size=patch, stride=patch)
        self.condition_embedder = ConditionEmbedder(cfg)
        self.blocks = nn.ModuleList([WanBlock(cfg) for _ in range(cfg["layers"])])
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)
        self.proj_out = nn.Linear(dim, cfg["out_channels"] * patch[0] * patch[1] * patch[2])
        self.self_attend = sdpa_attention
        self.cross_attend = sdpa_attention
        self.trace = None

    def keep_fp32(self):
        """The time embedding, modulation tables and the cross-attention norm stay fp32 when the rest is bf16."""
        self.condition_embedder.time_embedder.float()
        self.condition_embedder.time_proj.float()
        self.scale_shift_table.data = self.scale_shift_table.data.float()
        for block in self.blocks:
            block.scale_shift_table.data = block.scale_shift_table.data.float()
            block.norm2.float()
        return self

    def record(self, name, value):
        if self.trace is not None:
            self.trace[name] = value.detach()

    def forward(self, latent, timestep, context, rope=None):
        """rope: the tables of rope_tables() for this latent's token grid, computed here when not given."""
        cfg = self.cfg
        b, _, t, h, w = latent.shape
        pt, ph, pw = cfg["patch"]
        grid = (t // pt, h // ph, w // pw)
        dtype = self.proj_out.weight.dtype
        x = self.patch_embedding(latent.to(dtype)).flatten(2).transpose(1, 2)
        self.record("patch_tokens", x)
        if rope is None:
            rope = rope_tables(cfg, grid, latent.device)

        emb = self.condition_embedder
        time_dtype = emb.time_embedder.linear_1.weight.dtype
        temb = emb.time_embedder(sinusoid(timestep, cfg["freq_dim"]).to(time_dtype))
        tproj = emb.time_proj(F.silu(temb)).unflatten(1, (6, cfg["dim"]))
        self.record("temb", temb)
        self.record("timestep_proj", tproj.flatten(1))
        padded = torch.zeros(b, cfg["text_len"], cfg["text_dim"], dtype=dtype, device=latent.device)
        padded[:, :context.shape[1]] = context.to(dtype)
        text = emb.text_embedder(padded)
        self.record("text", text)

        for i, block in enumerate(self.blocks):
            x = block(x, text, tproj, rope, self.self_attend, self.cross_attend)
            self.record(f"block_{i}", x)

        shift, scale = (wide(self.scale_shift_table) + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (F.layer_norm(wide(x), (cfg["dim"],), eps=cfg["eps"]) * (1 + scale) + shift).to(dtype)
        out = self.proj_out(x)
        out = out.reshape(b, *grid, pt, ph, pw, cfg["out_channels"]).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, cfg["out_channels"], t, h, w)


# ---------------------------------------------------------------------------------------------------------------
# safetensors writing (the format is small; this keeps the script free of extra packages)

def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, (tensor, dtype) in tensors.items():
        t = tensor.detach().cpu().contiguous()
        if dtype == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        elif dtype == "F32":
            raw = t.to(torch.float32).numpy().tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


# ---------------------------------------------------------------------------------------------------------------
# dump

def init_weights(model, seed):
    """Uniform values with tileattn's RandomWeights standard deviations, rounded to bf16."""
    g = torch.Generator().manual_seed(seed)
    dim = model.cfg["dim"]
    for name, p in model.named_parameters():
        norm_weight = name.endswith(("norm_q.weight", "norm_k.weight", "norm2.weight"))
        if norm_weight:
            mean, std = 1.0, 0.05
        elif name.endswith("scale_shift_table"):
            mean, std = 0.0, 1.0 / math.sqrt(dim)
        elif name.endswith(".weight") and p.dim() >= 2:
            mean, std = 0.0, 1.0 / math.sqrt(p[0].numel())
        else:
            mean, std = 0.0, 0.02
        values = mean + std * math.sqrt(3.0) * (2 * torch.rand(p.shape, generator=g, dtype=torch.float64) - 1)
        p.data = values.to(torch.bfloat16).to(torch.float64)


def diffusers_config(cfg):
    return {"_class_name": "WanTransformer3DModel", "patch_size": list(cfg["patch"]),
            "num_attention_heads": cfg["heads"], "attention_head_dim": cfg["dim"] // cfg["heads"],
            "in_channels": cfg["in_channels"], "out_channels": cfg["out_channels"], "text_dim": cfg["text_dim"],
            "freq_dim": cfg["freq_dim"], "ffn_dim": cfg["ffn"], "num_layers": cfg["layers"], "cross_attn_norm": True,
            "qk_norm": "rms_norm_across_heads", "eps": cfg["eps"]}


def dump(args):
    cfg = CONFIGS[args.config]
    torch.manual_seed(args.seed)
    model = WanPeer(cfg)
    init_weights(model, args.seed)
    model = model.double().eval()
    model.self_attend = exact_attention
    model.cross_attend = exact_attention

    g = torch.Generator().manual_seed(args.seed + 1)
    t, h, w = (int(v) for v in args.latent.split(","))
    latent = torch.randn(2, cfg["in_channels"], t, h, w, generator=g, dtype=torch.float64).float()
    timestep = torch.tensor([937.5, 251.25], dtype=torch.float32)
    context = torch.randn(2, args.text_tokens, cfg["text_dim"], generator=g, dtype=torch.float64).float()

    model.trace = {}
    with torch.no_grad():
        velocity = model(latent.double(), timestep.double(), context.double())

    os.makedirs(os.path.join(args.out, "transformer"), exist_ok=True)
    with open(os.path.join(args.out, "transformer", "config.json"), "w") as f:
        json.dump(diffusers_config(cfg), f, indent=2)
    write_safetensors(os.path.join(args.out, "transformer", "diffusion_pytorch_model.safetensors"),
                      {n: (p, "BF16") for n, p in model.state_dict().items()})
    meta = {"config": args.config, "seed": args.seed, "torch": torch.__version__,
            "computed": "float64, exact softmax attention"}
    write_safetensors(os.path.join(args.out, "inputs.safetensors"),
                      {"latent": (latent, "F32"), "timestep": (timestep, "F32"), "context": (context, "F32")}, meta)
    outputs = {"velocity": (velocity, "F32")}
    outputs.update({n: (v, "F32") for n, v in model.trace.items()})
    write_safetensors(os.path.join(args.out, "outputs.safetensors"), outputs, meta)
    print(f"wrote {args.out}: {args.config}, latent {list(latent.shape)}, text {list(context.shape)}, "
          f"velocity rms {velocity.pow(2).mean().sqrt().item():.4f}")


# ---------------------------------------------------------------------------------------------------------------
# bench

class EventTimer:
    """Wraps an attention function and records CUDA events around each call (eager mode only)."""

    def __init__(self, fn):
        self.fn = fn
        self.pairs = []
        self.enabled = False

    def __call__(self, q, k, v):
        if not self.enabled:
            return self.fn(q, k, v)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = self.fn(q, k, v)
        end.record()
        self.pairs.append((start, end))
        return out

    def take_ms(self):
        total = sum(s.elapsed_time(e) for s, e in self.pairs)
        self.pairs = []
        return total


def time_steps(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return times


def bench(args):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cfg = CONFIGS[args.config]
    device = torch.device("cuda")
    torch.manual_seed(args.seed)
    with device:  # initialise on the GPU: 1.4e9 parameters take minutes to initialise on the host
        model = WanPeer(cfg)
    model = model.to(dtype=torch.bfloat16).keep_fp32().eval()
    t, h, w = (int(v) for v in args.latent.split(","))
    pt, ph, pw = cfg["patch"]
    tokens = (t // pt) * (h // ph) * (w // pw)
    latent = torch.randn(args.batch, cfg["in_channels"], t, h, w, device=device, dtype=torch.bfloat16)
    timestep = torch.full((args.batch,), 500.0, device=device)
    context = torch.randn(args.batch, args.text_tokens, cfg["text_dim"], device=device, dtype=torch.bfloat16)
    rope = tuple(r.float() for r in rope_tables(cfg, (t // pt, h // ph, w // pw), device))
    backend = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
               "efficient": SDPBackend.EFFICIENT_ATTENTION}[args.sdpa]
    print(f"peer: {args.config} bf16, latent {t}x{h}x{w} -> {tokens} video tokens, {args.text_tokens} text tokens, "
          f"batch {args.batch}; SDPA {args.sdpa}; torch {torch.__version__}, {torch.cuda.get_device_name()}")
    sys.stdout.flush()

    rows = []
    for mode in args.modes.split(","):
        results = {}
        for variant in ("full", "no-self-attn"):
            self_timer = EventTimer(sdpa_attention if variant == "full" else no_attention)
            cross_timer = EventTimer(sdpa_attention)
            model.self_attend, model.cross_attend = self_timer, cross_timer
            if mode == "compile":
                torch._dynamo.reset()
                fwd = torch.compile(model, mode=args.compile_mode)
            else:
                fwd = model

            def step():
                with torch.no_grad(), sdpa_kernel([backend]):
                    return fwd(latent, timestep, context, rope)

            times = time_steps(step, args.iters, args.warmup)
            entry = {"step": statistics.median(times), "all": times}
            if mode == "eager" and variant == "full":
                self_timer.enabled = cross_timer.enabled = True
                step()
                torch.cuda.synchronize()
                entry["self_events"] = self_timer.take_ms()
                entry["cross_events"] = cross_timer.take_ms()
                self_timer.enabled = cross_timer.enabled = False
            results[variant] = entry
            print(f"  {mode:7s} {variant:12s} median {entry['step']:9.1f} ms  "
                  f"(runs: {', '.join(f'{x:.1f}' for x in times)})")
            sys.stdout.flush()
        full, bare = results["full"]["step"], results["no-self-attn"]["step"]
        rows.append((mode, full, 1 - bare / full, results["full"].get("self_events"),
                     results["full"].get("cross_events")))

    print()
    print(f"{'mode':8s} {'step ms':>9s} {'self-attn share (no-op diff)':>29s} {'self-attn ms (events)':>22s} "
          f"{'cross-attn ms (events)':>23s}")
    for mode, full, share, self_ms, cross_ms in rows:
        ev = f"{self_ms:.1f} ({100 * self_ms / full:.1f}%)" if self_ms is not None else "-"
        cr = f"{cross_ms:.1f} ({100 * cross_ms / full:.1f}%)" if cross_ms is not None else "-"
        print(f"{mode:8s} {full:9.1f} {100 * share:28.1f}% {ev:>22s} {cr:>23s}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="time one transformer step on the GPU")
    b.add_argument("--config", default="wan-1.3b", choices=sorted(CONFIGS))
    b.add_argument("--latent", default="21,60,104", help="latent T,H,W (default: Wan 480p, 81 frames)")
    b.add_argument("--text-tokens", type=int, default=512)
    b.add_argument("--batch", type=int, default=2, help="2 = conditional + unconditional")
    b.add_argument("--modes", default="eager,compile")
    b.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. max-autotune-no-cudagraphs")
    b.add_argument("--sdpa", default="cudnn", choices=["cudnn", "flash", "efficient"])
    b.add_argument("--iters", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("dump", help="write weights, inputs and float64 outputs for the Java model")
    d.add_argument("--out", required=True)
    d.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--latent", default="3,6,10")
    d.add_argument("--text-tokens", type=int, default=7)
    args = p.parse_args()
    if args.command == "dump":
        dump(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
