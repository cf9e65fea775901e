#!/usr/bin/env python3
"""Dense attention softmax(Q K^T * scale) V in numpy: the CPU baseline that `tileattn bench` times against.

usage: numpy_dense.py IN.safetensors [--repeat N] [--scale X] [--output OUT.safetensors]

IN holds F32 tensors q, k, v shaped [B, heads, S, d]. Each head is two fp32 matmuls through numpy's BLAS with a
row-wise softmax between them. One untimed warm-up run, then N timed runs; prints one JSON line with the median
and all times in milliseconds. With --output, writes the result as F32 tensor 'out' so the caller can check it.
"""
import argparse
import json
import struct
import sys
import time

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {entry['dtype']}, this script reads F32 only")
        begin, end = entry["data_offsets"]
        count = (end - begin) // 4
        tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=8 + n + begin).reshape(entry["shape"])
    return tensors


def write_safetensors(path, name, array):
    array = np.ascontiguousarray(array, dtype="<f4")
    header = json.dumps({name: {"dtype": "F32", "shape": list(array.shape),
                                "data_offsets": [0, array.nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        f.write(array.tobytes())


def attention(q, k, v, scale):
    batch, heads = q.shape[:2]
    out = np.empty_like(q)
    for b in range(batch):
        for h in range(heads):
            s = q[b, h] @ k[b, h].T
            s *= np.float32(scale)
            s -= s.max(axis=1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=1, keepdims=True)
            out[b, h] = s @ v[b, h]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("--output")
    args = parser.parse_args()
    t = read_safetensors(args.input)
    q, k, v = t["q"], t["k"], t["v"]
    scale = args.scale if args.scale is not None else 1.0 / np.sqrt(q.shape[-1])
    out = attention(q, k, v, scale)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        out = attention(q, k, v, scale)
        times.append((time.perf_counter() - t0) * 1e3)
    if args.output:
        write_safetensors(args.output, "out", out)
    print(json.dumps({"median_ms": float(np.median(times)), "times_ms": times, "numpy": np.__version__}))


if __name__ == "__main__":
    main()
