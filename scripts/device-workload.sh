#!/usr/bin/env bash
# Run THERE (the lent GPU machine, from the repository root), after scripts/device-test.sh: `tileattn bench
# workload`, the attention of one whole HunyuanVideo generation under the STA authors' published strategy against
# dense attention (docs/benchmarks.md says how it is estimated). Needs the bundle and runtime that
# scripts/device-build.sh makes here, the bundle holding mask_strategy_hunyuan.json:
#   run(command="bash scripts/device-workload.sh", carry=[".device/tileattn", ".device/jre.tgz"])
# One run per batch in BATCHES (default "1 2": batch 1 a single pass, batch 2 guidance's conditional +
# unconditional pair, the issue's case, printed last); logs and TSV files go to $OUT (or
# /tmp/tileattn-device-out); the tables are printed last.
# WORKLOAD_ARGS adds options (default "--markdown"); WORKLOAD_TIMEOUT limits each run (default 100 s).
# Usage: scripts/device-workload.sh [BUNDLE_DIR [JRE_TGZ]]   (defaults: .device/tileattn .device/jre.tgz)
set -uo pipefail

bundle="${1:-.device/tileattn}"
jre_tgz="${2:-.device/jre.tgz}"
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
start=$SECONDS

strategy="$bundle/mask_strategy_hunyuan.json"
[[ -f "$strategy" ]] || { echo "$strategy is missing: run scripts/device-build.sh where ../shared/reference has it" >&2; exit 2; }
runtime=/tmp/tileattn-jre
if [[ ! -x "$runtime/jre/bin/java" ]]; then
  rm -rf "$runtime" && mkdir -p "$runtime" && tar xzf "$jre_tgz" -C "$runtime" || { echo "cannot unpack $jre_tgz" >&2; exit 2; }
fi
tileattn=("$runtime/jre/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g
          -jar "$bundle/tileattn.jar")

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv,noheader > "$out/workload-gpu.txt" 2>&1

status=0
summary=()
for batch in ${BATCHES:-1 2}; do
  t0=$SECONDS
  # shellcheck disable=SC2086
  timeout "${WORKLOAD_TIMEOUT:-100}" "${tileattn[@]}" bench workload --strategy "$strategy" --batch "$batch" \
      --tsv "$out/workload-batch$batch.tsv" ${WORKLOAD_ARGS:---markdown} > "$out/workload-batch$batch.log" 2>&1
  rc=$?
  (( rc == 0 )) || status=1
  summary+=("batch $batch: exit $rc, $((SECONDS - t0)) s")
done

echo "---- GPU: $(cat "$out/workload-gpu.txt")"
echo "device workload: ${summary[*]}; $((SECONDS - start)) s in all"
for batch in ${BATCHES:-1 2}; do
  echo "---- tileattn bench workload --batch $batch"
  cat "$out/workload-batch$batch.log"
done
exit $status
