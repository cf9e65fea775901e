"""Joins `tileattn bench gpu --tsv` with `scripts/peers_sta.py --tsv` into one markdown table.

Run by scripts/device-bench.sh on the device machine; needs only the standard library. One row per case and
tileattn kernel: tileattn's median time and effective TFLOP/s, each peer's median time on the same case, and
tileattn's speed relative to each peer (peer ms / tileattn ms: "1.20x faster", or "1.39x slower").
A dense case and the STA case whose window covers the grid compute the same function, so a peer measured on
one stands in for the other (marked *).

Usage: python3 scripts/bench_table.py TILEATTN_TSV [PEERS_TSV]
"""
import csv
import os
import sys

PEERS = ["FlexAttention", "SDPA cuDNN", "SDPA flash"]


def read(path):
    if not path or not os.path.exists(path):
        return [], []
    with open(path) as f:
        lines = f.read().splitlines()
    comments = [line[1:].strip() for line in lines if line.startswith("#")]
    rows = [line for line in lines if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(rows, delimiter="\t")), comments


def twin(case):
    """The case computing the same function: MODEL-dense <-> MODEL-sta-full."""
    model = case.split("-")[0]
    return {f"{model}-dense": f"{model}-sta-full", f"{model}-sta-full": f"{model}-dense"}.get(case)


def ratio(peer_ms, ours_ms):
    r = peer_ms / ours_ms
    return f"{r:.2f}x faster" if r >= 1 else f"{1 / r:.2f}x slower"


def main():
    ours, our_notes = read(sys.argv[1])
    peers, peer_notes = read(sys.argv[2] if len(sys.argv) > 2 else None)
    if not ours:
        print(f"no tileattn results in {sys.argv[1]}")
        return 1
    peer_ms = {(p["case"], p["peer"]): float(p["ms"]) for p in peers}

    def peer_time(case, peer):
        if (case, peer) in peer_ms:
            return peer_ms[(case, peer)], ""
        other = twin(case)
        if other and (other, peer) in peer_ms:
            return peer_ms[(other, peer)], "*"
        return None, ""

    header = ["case", "tileattn kernel", "ms", "TFLOP/s", "rel L2 (sampled)"] + [f"{p} ms" for p in PEERS] + [
        f"vs {p}" for p in PEERS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    reorders = []
    for row in ours:
        case = row["case"]
        if case.startswith("reorder-"):
            reorders.append(row)
            continue
        ms = float(row["ms_median"])
        cells = [case, row["kernel"], f"{ms:.2f}", f"{float(row['tflops']):.0f}",
                 row["rel_l2_sampled"] or "-"]
        times, ratios = [], []
        for peer in PEERS:
            t, mark = peer_time(case, peer)
            times.append("-" if t is None else f"{t:.2f}{mark}")
            ratios.append("-" if t is None else ratio(t, ms))
        print("| " + " | ".join(cells + times + ratios) + " |")
    print()
    print("ms: median of CUDA-event timings; TFLOP/s = 4 * heads * (attended keys summed over queries) * d / time.")
    if any(peer_time(r["case"], p)[1] for r in ours for p in PEERS if not r["case"].startswith("reorder-")):
        print("* measured on the twin case: dense attention and an STA window covering the grid are the same function.")
    for r in reorders:
        print(f"Reordering q, k, v into tiles and the output back ({r['kernel']}), {r['description']}: "
              f"{float(r['ms_median']):.2f} ms")
    for note in our_notes + peer_notes:
        print(note)
    if not peers:
        print("no peer results (peers_sta.py did not run or failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
