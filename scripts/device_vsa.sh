#!/bin/bash
# Device-machine driver for VSA on the GPU (copied to .device/vsagpu/ with the Java bundle of scripts/device-build.sh
# in .device/vsagpu/tileattn and scripts/peers_vsa.py beside it). Phases, any order, several per call:
#   java      VsaKernelsGpuTest, VsaPlanTest and TileAttentionKernelGpuTest (the forward wrapper VSA extends)
#   memcheck  compute-sanitizer memcheck (leak check) over VsaKernelsGpuTest's backward test (every VSA kernel)
#   bench     VsaBenchmark (Wan-2.1 1.3B 480p, unpadded and padded), writing batch 0's selection to $OUT
#   peers     scripts/peers_vsa.py: SDPA cuDNN / flash dense and FlexAttention with that selection
# BENCH_MODE=quick times only the default Hopper variant; PEERS_MODE=--flex-only skips the dense peers.
# Logs go to $OUT; each phase prints a short summary.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/out}
mkdir -p "$out"
rm -rf /tmp/jre && mkdir -p /tmp/jre && tar xzf "$here/../jre.tgz" -C /tmp/jre
java=/tmp/jre/jre/bin/java
cp_="$here/tileattn/test-classes:$here/tileattn/tileattn.jar"
for j in "$here"/tileattn/lib/*.jar; do cp_="$cp_:$j"; done
junit() {  # $1 log name, $2 timeout, rest: selectors; JUNIT_PREFIX may hold the sanitizer
  local log=$1 limit=$2
  shift 2
  TILEATTN_REQUIRE_GPU=1 timeout "$limit" $JUNIT_PREFIX "$java" --add-modules jdk.incubator.vector \
    --enable-native-access=ALL-UNNAMED -Xmx8g -jar "$here/tileattn/junit-platform-console-standalone.jar" execute \
    --disable-banner --disable-ansi-colors --details=tree --class-path "$cp_" "$@" > "$out/$log" 2>&1
  echo "$log rc=$?"
  grep -E "tests (successful|failed|found)|✘|=>|ERROR SUMMARY|LEAK SUMMARY" "$out/$log" | head -30
}
for phase in "$@"; do
  t0=$SECONDS
  case $phase in
    java) junit java.log 100 --select-class tileattn.kernels.VsaKernelsGpuTest --select-class tileattn.kernels.VsaPlanTest \
            --select-class tileattn.kernels.TileAttentionKernelGpuTest ;;
    memcheck) JUNIT_PREFIX="compute-sanitizer --tool memcheck --leak-check full --error-exitcode 86" \
            junit memcheck.log 90 --select-method tileattn.kernels.VsaKernelsGpuTest#backwardMatchesCpuVsaBackward ;;
    bench) timeout 100 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g \
            -cp "$cp_" tileattn.kernels.VsaBenchmark "$out" $BENCH_MODE 2>&1 | tee "$out/bench.log" | grep -vE "^\s*$" ;;
    peers) PYTHONUNBUFFERED=1 timeout 130 python3 "$here/peers_vsa.py" "$out" $PEERS_MODE 2>&1 | tee "$out/peers.log" \
            | grep -E "PEER|flex|torch|Error|error" ;;
  esac
  echo "phase $phase: $((SECONDS - t0)) s"
done
