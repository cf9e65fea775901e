#!/bin/bash
# Run THERE (the lent GPU machine, from the repository root): the Wan-2.1 DiT on the GPU, with the bundle and runtime
# of scripts/device-build.sh:
#   run(command="bash scripts/device_dit.sh", carry=[".device/tileattn", ".device/jre.tgz"])
# DIT_DEMO=0 skips step 4, DIT_PEER=0 step 5. DIT_TESTS=0 skips step 2 (scripts/device-test.sh runs those tests too). DIT_SECOND="ARGS" adds a second `bench
# dit` with those arguments after the first (e.g. "--residual f32 --attention dense,vsa"), logged to bench-dit-2.log.
# 1. finds libcublasLt (toolkit or PyTorch's pip wheel) and exports TILEATTN_CUBLASLT;
# 2. GPU tests: cuBLASLt gemm (odd shapes, epilogues), every dit.cu kernel against the CPU model's pieces, the GPU
#    model against the CPU model (dense, STA, VSA, and a 3-step guided sampling run);
# 3. `tileattn bench dit`: one Wan-2.1 1.3B 480p step (batch 2, 512 text tokens) with dense, STA 3x3x3 of 6x8x8 and
#    VSA 87.5%, random weights, with the time per part of a profiled step;
# 4. `tileattn demo` (its DiT step on the GPU at the end);
# 5. the PyTorch peer (scripts/wan_peer.py bench, SDPA cuDNN) torch.compile only (eager is known: 1461.8 ms);
# then one summary table. Logs and TSVs go to $OUT.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
bundle=${BUNDLE:-.device/tileattn}
out=${OUT:-/tmp/out}
mkdir -p "$out"
t_all=$SECONDS
rm -rf /tmp/jre && mkdir -p /tmp/jre && tar xzf "${JRE_TGZ:-.device/jre.tgz}" -C /tmp/jre || { echo "cannot unpack jre.tgz"; exit 2; }
java=/tmp/jre/jre/bin/java
cp_="$bundle/test-classes:$bundle/tileattn.jar"
for j in "$bundle"/lib/*.jar; do cp_="$cp_:$j"; done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

lib=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.13*' -o -name 'libcublasLt.so.12*' 2>/dev/null | grep -v '\.a$' | sort -r | head -1)
echo "libcublasLt: ${lib:-not found by find (tileattn searches itself)}" | tee "$out/cublaslt.txt"
[[ -n "$lib" ]] && export TILEATTN_CUBLASLT="$lib"

rc_tests=skipped
if [[ "${DIT_TESTS:-1}" != 0 ]]; then
echo "---- GPU tests"
t0=$SECONDS
TILEATTN_REQUIRE_GPU=1 timeout 60 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
  -jar "$bundle/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors \
  --details=tree --class-path "$cp_" \
  --select-class tileattn.blas.GemmGpuTest --select-class tileattn.blas.CublasLtLibraryTest \
  --select-class tileattn.dit.DitKernelsGpuTest --select-class tileattn.dit.GpuWanModelGpuTest > "$out/gpu-tests.log" 2>&1
rc_tests=$?
grep -E "relative L2|gemm:|GPU model:|✘|=> " "$out/gpu-tests.log" | head -40
tests_line=$(grep -E "tests (successful|failed|found)" "$out/gpu-tests.log" | tr -s ' ' | tr '\n' ' ')
echo "tests: $tests_line (rc $rc_tests, $((SECONDS - t0)) s)"
fi

echo "---- bench dit"
t0=$SECONDS
timeout ${DIT_BENCH_TIMEOUT:-200} "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx48g \
  -cp "$bundle/tileattn.jar" tileattn.cli.Main bench dit --latent 21,60,104 --iters 3 --warmup 1 \
  --tsv "$out/dit.tsv" 2>&1 | tee "$out/bench-dit.log"
rc_bench=$?
echo "bench dit rc $rc_bench, $((SECONDS - t0)) s"
if [[ -n "${DIT_SECOND:-}" ]]; then
  echo "---- bench dit $DIT_SECOND"
  t0=$SECONDS
  # shellcheck disable=SC2086
  timeout 150 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx48g \
    -cp "$bundle/tileattn.jar" tileattn.cli.Main bench dit --latent 21,60,104 --iters 3 --warmup 1 $DIT_SECOND \
    2>&1 | tee "$out/bench-dit-2.log" | grep -E " step |residual|^ *[a-z]"
  echo "second bench dit rc $?, $((SECONDS - t0)) s"
fi

rc_demo=skipped
if [[ "${DIT_DEMO:-1}" != 0 ]]; then
echo "---- demo"
t0=$SECONDS
timeout 45 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
  -cp "$bundle/tileattn.jar" tileattn.cli.Main demo > "$out/demo.log" 2>&1
rc_demo=$?
grep -v "^WARNING" "$out/demo.log" | tail -8
echo "demo rc $rc_demo, $((SECONDS - t0)) s"
fi

rc_peer=skipped
if [[ "${DIT_PEER:-1}" != 0 ]]; then
echo "---- PyTorch peer"
t0=$SECONDS
PYTHONUNBUFFERED=1 timeout 110 python3 "$here/wan_peer.py" bench --latent 21,60,104 --text-tokens 512 --batch 2 \
  --modes compile --iters 3 --warmup 1 2>&1 | tee "$out/peer.log" | grep -vE "^\s*$|Warning|warn"
rc_peer=$?
echo "peer rc $rc_peer, $((SECONDS - t0)) s"
fi

echo "---- summary ($(cat "$out/gpu.txt"); $((SECONDS - t_all)) s in all)"
python3 - "$out" <<'PY'
import sys, os, re
out = sys.argv[1]
rows = []
tsv = os.path.join(out, "dit.tsv")
if os.path.exists(tsv):
    lines = open(tsv).read().splitlines()
    head = lines[0].split("\t")
    for line in lines[1:]:
        f = line.split("\t")
        rows.append(("tileattn " + f[0], float(f[1]), float(f[3])))
        parts = {h: float(v) for h, v in zip(head, f) if h.startswith("ms_")}
        if parts:
            na = parts.get("ms_profiled_step", 0) - parts.get("ms_self_attention", 0)
            print(f"{f[0]}: outside self-attention {na:.1f} ms (ditgpu run: ~403; torch.compile: 287); "
                  + ", ".join(f"{k[3:]} {v:.1f}" for k, v in parts.items() if k != "ms_profiled_step" and v >= 1))
peer = {}
log = os.path.join(out, "peer.log")
if os.path.exists(log):
    for line in open(log):
        m = re.match(r"^(eager|compile)\s+([0-9.]+)\s+([0-9.]+)%", line)
        if m:
            peer[m.group(1)] = (float(m.group(2)), float(m.group(3)) / 100)
for mode in ("eager", "compile"):
    if mode in peer:
        rows.append(("pytorch " + mode + " (cuDNN SDPA)", peer[mode][0], peer[mode][1]))
    elif mode == "eager":   # not rerun: the ditgpu run's number (H200, same script)
        rows.append(("pytorch eager (ditgpu run, not rerun)", 1461.8, 0.473))
comp = peer.get("compile", (float("nan"), 0))[0]
dense = next((r[1] for r in rows if r[0] == "tileattn dense"), float("nan"))
print(f"{'step (Wan-1.3B 480p, B=2)':40s} {'step ms':>9s} {'self-attn share':>16s} {'vs torch.compile':>17s} {'dense/this':>11s}")
for name, ms, share in rows:
    print(f"{name:40s} {ms:9.1f} {100*share:15.1f}% {ms/comp:16.2f}x {dense/ms:10.2f}x")
PY
echo "exit codes: tests $rc_tests, bench $rc_bench, demo $rc_demo, peer $rc_peer"
[[ $rc_tests =~ ^(0|skipped)$ && $rc_bench == 0 && $rc_demo =~ ^(0|skipped)$ && $rc_peer =~ ^(0|skipped)$ ]]
