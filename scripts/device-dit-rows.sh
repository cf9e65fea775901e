#!/bin/bash
# The DiT row kernels (src/main/cuda/dit.cu) and the Wan-2.1 step on the lent GPU machine, in one device call.
# HERE (JDK 25, Maven, nvcc), from the repository root, pack a folder that travels:
#   bash scripts/device-dit-rows.sh pack .device/NAME
# It holds the bundle of scripts/device-build.sh (tileattn/), this script as run.sh, and copies of dit.cu, its
# header and src/test/cuda/dit_rows_bench.cu under src/ (the device gets the main checkout's tree only). THERE:
#   run(command="bash .device/NAME/run.sh", carry=[".device/NAME", ".device/jre.tgz"])
# 1. dit_rows_bench: each row kernel in its generic form (one block per row, scalar accesses: the kernels before the
#    vector ones) and its vector form at the Wan-2.1 1.3B 480p shapes, on the same card: agreement, ms and GB/s;
# 2. GPU tests: tileattn.dit.DitKernelsGpuTest, tileattn.dit.GpuWanModelGpuTest, tileattn.blas.GemmGpuTest;
# 3. `tileattn bench dit`: one Wan-2.1 1.3B 480p step (batch 2, 512 text tokens), dense, STA 3x3x3 of 6x8x8 and
#    VSA 87.5%, with the time per part of a profiled step;
# 4. with BASELINE=1 and .device/tileattn carried too: the same bench with that bundle, dense and STA only;
# then a summary table. Logs and TSVs go to $OUT. Exit status 0 when every stage passed.
if [[ "${1:-}" == pack ]]; then
  set -euo pipefail
  dir="${2:?usage: device-dit-rows.sh pack DIR}"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  jre="${JRE_TGZ:-$(dirname "$dir")/jre.tgz}"
  bash "$root/scripts/device-build.sh" "$dir/tileattn" "$jre"
  rm -rf "$dir/src"
  mkdir -p "$dir/src/main/cuda/include/tileattn" "$dir/src/test/cuda"
  cp "$root/src/main/cuda/dit.cu" "$dir/src/main/cuda/"
  cp "$root/src/main/cuda/include/tileattn/common.cuh" "$dir/src/main/cuda/include/tileattn/"
  cp "$root/src/test/cuda/dit_rows_bench.cu" "$root/src/test/cuda/cuda_check.cuh" "$root/src/test/cuda/event_timing.cuh" "$dir/src/test/cuda/"
  cp "$root/scripts/device-dit-rows.sh" "$dir/run.sh"
  echo "packed $dir ($(du -sh "$dir" | cut -f1)); runtime $jre"
  exit 0
fi
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
bundle=$here/tileattn
out=${OUT:-/tmp/out}
mkdir -p "$out"
t_all=$SECONDS
runtime=/tmp/dit-rows-jre
rm -rf "$runtime" && mkdir -p "$runtime" && tar xzf "${JRE_TGZ:-.device/jre.tgz}" -C "$runtime" \
  || { echo "cannot unpack jre.tgz"; exit 2; }
java=$runtime/jre/bin/java
cp_="$bundle/test-classes:$bundle/tileattn.jar"
for j in "$bundle"/lib/*.jar; do cp_="$cp_:$j"; done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

lib=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.13*' -o -name 'libcublasLt.so.12*' 2>/dev/null | grep -v '\.a$' | sort -r | head -1)
echo "libcublasLt: ${lib:-not found by find (tileattn searches itself)}" | tee "$out/cublaslt.txt"
[[ -n "$lib" ]] && export TILEATTN_CUBLASLT="$lib"

echo "---- dit_rows_bench"
t0=$SECONDS
rc_rows=1
if nvcc -O3 -std=c++17 -arch=sm_90a -lineinfo -I "$here/src/main/cuda/include" -o /tmp/dit_rows_bench \
     "$here/src/test/cuda/dit_rows_bench.cu" > "$out/dit_rows_bench.build.log" 2>&1; then
  timeout 60 /tmp/dit_rows_bench 2>&1 | tee "$out/dit_rows_bench.log"
  rc_rows=$?
else
  cat "$out/dit_rows_bench.build.log"
fi
echo "dit_rows_bench rc $rc_rows, $((SECONDS - t0)) s"

echo "---- GPU tests"
t0=$SECONDS
TILEATTN_REQUIRE_GPU=1 timeout 150 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
  -jar "$bundle/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors \
  --details=tree --class-path "$cp_" \
  --select-class tileattn.dit.DitKernelsGpuTest --select-class tileattn.dit.GpuWanModelGpuTest \
  --select-class tileattn.blas.GemmGpuTest > "$out/gpu-tests.log" 2>&1
rc_tests=$?
grep -E "relative L2|gemm:|GPU model:|✘|=> " "$out/gpu-tests.log" | head -40
tests_line=$(grep -E "tests (successful|failed|found)" "$out/gpu-tests.log" | tr -s ' ' | tr '\n' ' ')
echo "tests: $tests_line (rc $rc_tests, $((SECONDS - t0)) s)"

bench() {   # $1 bundle jar, $2 tsv, $3 log, $4 attentions
  timeout 150 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx48g \
    -cp "$1" tileattn.cli.Main bench dit --latent 21,60,104 --iters 3 --warmup 1 --attention "$4" \
    --tsv "$2" 2>&1 | tee "$3"
}

echo "---- bench dit"
t0=$SECONDS
bench "$bundle/tileattn.jar" "$out/dit.tsv" "$out/bench-dit.log" dense,sta,vsa
rc_bench=$?
echo "bench dit rc $rc_bench, $((SECONDS - t0)) s"

rc_base=skipped
if [[ "${BASELINE:-0}" != 0 && -f .device/tileattn/tileattn.jar ]]; then
  echo "---- baseline bench dit (.device/tileattn)"
  t0=$SECONDS
  bench .device/tileattn/tileattn.jar "$out/dit-baseline.tsv" "$out/bench-dit-baseline.log" dense,sta
  rc_base=$?
  echo "baseline rc $rc_base, $((SECONDS - t0)) s"
fi

echo "---- summary ($(cat "$out/gpu.txt"); $((SECONDS - t_all)) s in all)"
grep -E "^ *(residual|q,k|cross q|text k|heads to|time emb)" "$out/dit_rows_bench.log" 2>/dev/null
python3 - "$out" <<'PY'
import sys, os
out = sys.argv[1]
# H200 run of 2026-12-05 before this branch (docs/benchmarks.md): step ms and the parts it had
before = {"dense": 1047.7, "sta": 586.4, "vsa": 583.5}
def rows(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    lines = open(path).read().splitlines()
    head = lines[0].split("\t")
    res = []
    for line in lines[1:]:
        f = line.split("\t")
        res.append((f[0], float(f[1]), {h[3:]: float(v) for h, v in zip(head, f) if h.startswith("ms_")}))
    return res
new, base = rows("dit.tsv"), rows("dit-baseline.tsv")
def kind(name):
    return "dense" if name == "dense" else "sta" if name.startswith("STA") or name.startswith("sta") else \
        "vsa" if name.startswith("VSA") or name.startswith("vsa") else name
dense = next((ms for n, ms, _ in new if n == "dense"), float("nan"))
print(f"{'step (Wan-1.3B 480p, B=2)':36s} {'step ms':>9s} {'outside self-attn':>18s} {'dense/this':>11s} {'baseline here':>14s} {'H200 before':>12s}")
for n, ms, parts in new:
    outside = parts.get("profiled_step", 0) - parts.get("self_attention", 0)
    b = next((bms for bn, bms, _ in base if bn == n), None)
    print(f"{n:36s} {ms:9.1f} {outside:18.1f} {dense / ms:10.2f}x {('%.1f' % b) if b else '-':>14s} "
          f"{before.get(kind(n), float('nan')):12.1f}")
if new:
    keys = [k for k in new[0][2] if k != "profiled_step"]
    print()
    print(f"{'profiled step, ms per part':34s}" + "".join(f"{n[:14]:>15s}" for n, _, _ in new))
    for k in keys:
        print(f"{k:34s}" + "".join(f"{p.get(k, 0):15.2f}" for _, _, p in new))
    elementwise = ["residual_norm", "qk_norm_rope", "cross_q_to_heads", "text_to_heads", "heads_to_rows"]
    print(f"{'row kernels (norms, to/from heads)':34s}" + "".join(f"{sum(p.get(k, 0) for k in elementwise):15.2f}" for _, _, p in new))
    print(f"{'outside self-attention':34s}" + "".join(f"{p.get('profiled_step', 0) - p.get('self_attention', 0):15.2f}" for _, _, p in new))
PY
echo "exit codes: dit_rows_bench $rc_rows, tests $rc_tests, bench $rc_bench, baseline $rc_base"
(( rc_rows == 0 && rc_tests == 0 && rc_bench == 0 )) && [[ $rc_base == skipped || $rc_base == 0 ]]
