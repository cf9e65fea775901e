#!/usr/bin/env bash
# Run THERE (the lent GPU machine, from the repository root): the training-side benchmarks with their peers in one
# call. Phases, in the order given (default: all):
#   bwd       the backward checker's benchmark (src/test/cuda/tile_attention_bwd_check.cu built here into
#             .device/train/bwdcheck): portable and Hopper kernels at the HunyuanVideo and Wan shapes, STA and dense,
#             sampled rows checked against float64
#   sanitize  compute-sanitizer memcheck (leak check) and racecheck over the checker's small cases, every variant
#   bwdpeers  scripts/peers_bwd.py: SDPA cuDNN / flash backward, FlexAttention backward on the same STA mask
#   vsa       tileattn.kernels.VsaBenchmark (Wan-2.1 480p VSA forward, backward, forward+backward; the kernels
#             VsaKernels picks) from the bundle of scripts/device-build.sh, writing its selection to $OUT
#   vsapeers  scripts/peers_vsa.py over that selection: SDPA dense fwd / fwd+bwd, FlexAttention on VSA's mask
# Build here first:
#   scripts/device-build.sh
#   nvcc -O3 -std=c++17 -lineinfo -gencode=arch=compute_90a,code=sm_90a -I src/main/cuda/include \
#        -o .device/train/bwdcheck src/test/cuda/tile_attention_bwd_check.cu src/test/cuda/tile_attention_bwd_check_fwd.cu
# then run(command="bash scripts/device-training.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/train"]).
# Logs under $OUT (or /tmp/tileattn-device-out); the tables are printed last.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
bundle=.device/tileattn
runtime=/tmp/tileattn-jre
java="$runtime/jre/bin/java"
phases=("$@")
(( ${#phases[@]} )) || phases=(bwd bwdpeers vsa vsapeers)
summary=()
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader > "$out/train-gpu.txt" 2>&1
for phase in "${phases[@]}"; do
  t0=$SECONDS
  case $phase in
    bwd) BENCH_CASES=${BENCH_CASES:-"Hunyuan STA 3x3x3,Hunyuan dense,Wan STA 3x3x3,Wan dense,VSA"} \
           timeout "${BWD_TIMEOUT:-150}" .device/train/bwdcheck bench separate bm64 sm90 sm90_pipe128 sm90_r64 > "$out/bwd.log" 2>&1 ;;
    sanitize) timeout 60 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 86 .device/train/bwdcheck \
                sanitize separate bm64 sm90 sm90_pipe128 sm90_r64 > "$out/bwd-memcheck.log" 2>&1
              r1=$?
              timeout 60 compute-sanitizer --tool racecheck --error-exitcode 86 .device/train/bwdcheck \
                sanitize separate bm64 sm90 sm90_pipe128 sm90_r64 > "$out/bwd-racecheck.log" 2>&1
              (( r1 == 0 )) ;;
    bwdpeers) PYTHONUNBUFFERED=1 timeout "${BWDPEERS_TIMEOUT:-150}" python3 "$here/peers_bwd.py" > "$out/bwdpeers.log" 2>&1 ;;
    vsa) [[ -x $java ]] || { mkdir -p $runtime && tar xzf .device/jre.tgz -C $runtime; }
         cp_="$bundle/test-classes:$bundle/tileattn.jar"
         timeout "${VSA_TIMEOUT:-100}" "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
             -Xmx24g -cp "$cp_" tileattn.kernels.VsaBenchmark "$out" quick > "$out/vsa.log" 2>&1 ;;
    vsapeers) PYTHONUNBUFFERED=1 timeout "${VSAPEERS_TIMEOUT:-200}" python3 "$here/peers_vsa.py" "$out" > "$out/vsapeers.log" 2>&1 ;;
    *) echo "unknown phase $phase" >&2; continue ;;
  esac
  summary+=("$phase: exit $?, $((SECONDS - t0)) s")
done
echo "---- GPU: $(cat "$out/train-gpu.txt")"
for phase in "${phases[@]}"; do
  case $phase in
    bwd) echo "---- backward kernels"; grep -vE "^\s*$" "$out/bwd.log" | tail -30 ;;
    sanitize) echo "---- sanitizers"; grep -hE "ERROR SUMMARY|LEAK SUMMARY|RACECHECK SUMMARY|ALL OK|FAILED" "$out"/bwd-*check.log ;;
    bwdpeers) echo "---- peers_bwd.py"; sed -n '/^case /,$p' "$out/bwdpeers.log" | head -30; grep -E "Traceback|Error" "$out/bwdpeers.log" | head -3 ;;
    vsa) echo "---- VsaBenchmark"; grep -vE "^\s*$|WARNING" "$out/vsa.log" | tail -25 ;;
    vsapeers) echo "---- peers_vsa.py"; grep -vE "^\s*$|Warning|warn" "$out/vsapeers.log" | tail -25 ;;
  esac
done
echo "---- training benchmarks: ${summary[*]}"
