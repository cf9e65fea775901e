#!/bin/bash
# One device call for the warp-specialized Hopper kernel (tile_attention_sm90_ws.cu), from the repository root:
#   run(command="bash .device/hopper/device_hopper.sh", carry=[".device/hopper", ".device/jre.tgz"])
# with .device/hopper/ holding the checker built here (nvcc ... -o .device/hopper/check
# src/test/cuda/tile_attention_check.cu), device_sta.sh, peers_sta.py and this script, and tileattn/ from
# scripts/device-build.sh. SASS counts first, then the shape fuzz of the warp-specialized variants; the rest runs
# only when the fuzz passed (a hang there would hang everything after it): benchmark of every variant, sanitizers,
# Java GPU tests, and the peers at the Hopper issue's shapes. Logs under $OUT; the tables come last.
here=$(cd "$(dirname "$0")" && pwd)
export OUT=${OUT:-/tmp/out}
ws=${WS_VARIANTS:-ws_n128,ws_n192}
start=$SECONDS
SASS_DUMP=${SASS_DUMP:-Sm90WsConfigILi128ELi192ELi2ELb1E} bash "$here/device_sta.sh" gpu sass | grep -E "NVIDIA|name|sm90_ws_fwd_bf16_d128"
TILEATTN_VARIANTS=$ws timeout 150 bash "$here/device_sta.sh" check
if ! grep -q "ALL OK" "$OUT/check.log"; then
  echo "fuzz failed or timed out after $((SECONDS - start)) s; last lines:"; tail -5 "$OUT/check.log"; exit 1
fi
echo "-- fuzz passed at $((SECONDS - start)) s"
TILEATTN_VARIANTS=${BENCH_ALL:-mma_n64,wgmma_n64,$ws} timeout 200 bash "$here/device_sta.sh" bench > /dev/null
echo "-- bench done at $((SECONDS - start)) s"
TILEATTN_VARIANTS=${SANITIZE_VARIANTS:-ws_n192,ws_n128} timeout 150 bash "$here/device_sta.sh" sanitize
echo "-- sanitizers done at $((SECONDS - start)) s"
[[ -n "$SKIP_JAVA" ]] || bash "$here/device_sta.sh" java
echo "-- java done at $((SECONDS - start)) s"
[[ -n "$SKIP_PEERS" ]] || PEERS_ARGS=--short timeout ${PEERS_TIMEOUT:-150} bash "$here/device_sta.sh" peers > /dev/null
echo "-- peers done at $((SECONDS - start)) s"
grep -E "^\s*[A-Za-z(]" "$OUT/peers.log" 2>/dev/null | tail -6
cat "$OUT/bench.log"
