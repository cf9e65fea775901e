#!/usr/bin/env bash
# Run THERE (the lent GPU machine, from the repository root): tileattn's GPU benchmark (`tileattn bench gpu`:
# dense and STA forward at the HunyuanVideo and Wan-2.1 shapes, every kernel path) and its peers
# (scripts/peers_sta.py: SDPA flash and cuDNN, FlexAttention on the identical STA mask) in one call, then one
# table joining them (scripts/bench_table.py). Needs the bundle and runtime that scripts/device-build.sh makes here:
#   run(command="bash scripts/device-bench.sh", carry=[".device/tileattn", ".device/jre.tgz"])
# Logs, both TSV files and the table (bench-table.md) go to $OUT (or /tmp/tileattn-device-out); the table is
# printed last. Environment: BENCH_ARGS (options for `bench gpu`, default "--repeat 7"), PEERS=0 skips the
# peers, DEMO=0 skips the GPU demo; each stage has a time limit (BENCH_TIMEOUT 240 s, PEERS_TIMEOUT 300 s,
# DEMO_TIMEOUT 120 s) so that a stuck one still leaves the table of the others. Exit status: 0 when every stage
# ran and the benchmark's output checks passed.
# Usage: scripts/device-bench.sh [BUNDLE_DIR [JRE_TGZ]]   (defaults: .device/tileattn .device/jre.tgz)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle="${1:-.device/tileattn}"
jre_tgz="${2:-.device/jre.tgz}"
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
start=$SECONDS

runtime=/tmp/tileattn-jre
if [[ ! -x "$runtime/jre/bin/java" ]]; then
  rm -rf "$runtime" && mkdir -p "$runtime" && tar xzf "$jre_tgz" -C "$runtime" || { echo "cannot unpack $jre_tgz" >&2; exit 2; }
fi
tileattn=("$runtime/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g
          -jar "$bundle/tileattn.jar")

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv,noheader > "$out/bench-gpu.txt" 2>&1

t0=$SECONDS
# shellcheck disable=SC2086
timeout "${BENCH_TIMEOUT:-240}" "${tileattn[@]}" bench gpu --tsv "$out/tileattn.tsv" ${BENCH_ARGS:---repeat 7} > "$out/bench.log" 2>&1
rc_bench=$?
bench_s=$((SECONDS - t0))
echo "---- tileattn bench gpu (exit $rc_bench, $bench_s s)"
cat "$out/bench.log"

rc_peers=skipped peers_s=0
if [[ "${PEERS:-1}" != 0 ]]; then
  t0=$SECONDS
  PYTHONUNBUFFERED=1 timeout "${PEERS_TIMEOUT:-300}" python3 "$here/peers_sta.py" --tsv "$out/peers.tsv" > "$out/peers.log" 2>&1
  rc_peers=$?
  peers_s=$((SECONDS - t0))
  echo "---- peers_sta.py (exit $rc_peers, $peers_s s)"
  grep -E "self-check|Error|error" "$out/peers.log" | grep -v DeprecationWarning | head -10
fi

rc_demo=skipped demo_s=0
if [[ "${DEMO:-1}" != 0 ]]; then
  t0=$SECONDS
  timeout "${DEMO_TIMEOUT:-120}" "${tileattn[@]}" demo > "$out/demo.log" 2>&1
  rc_demo=$?
  demo_s=$((SECONDS - t0))
  echo "---- tileattn demo (exit $rc_demo, $demo_s s)"
  cat "$out/demo.log"
fi

echo "---- GPU: $(cat "$out/bench-gpu.txt")"
python3 "$here/bench_table.py" "$out/tileattn.tsv" "$out/peers.tsv" | tee "$out/bench-table.md"
echo "device bench: bench $bench_s s (exit $rc_bench), peers $peers_s s (exit $rc_peers), demo $demo_s s (exit $rc_demo), $((SECONDS - start)) s in all"
[[ $rc_bench == 0 && ( $rc_peers == 0 || $rc_peers == skipped ) && ( $rc_demo == 0 || $rc_demo == skipped ) ]]
