#!/usr/bin/env bash
# Run THERE: the quickest look at the kernel variants of scripts/build-variants.sh, for a call with little device time
# left: VsaBenchmark quick (VSA fine forward at 32,760 and 39,936 tokens) for the new bundle and each .device/var*/
# side, then each variant's VSA and forward GPU tests. Results are appended to $OUT/variants.txt as they come, so a
# call cut short still returns what finished.
#   run(command="bash scripts/device_variants_quick.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/varNAME"...])
set -uo pipefail
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out" /tmp/jre && tar xzf .device/jre.tgz -C /tmp/jre
java=/tmp/jre/jre/bin/java
log="$out/variants.txt"
classpath() {
  local prefix=""
  [[ $1 != new ]] && prefix=".device/$1:"
  local cp_="$prefix.device/tileattn/test-classes:.device/tileattn/tileattn.jar"
  for j in .device/tileattn/lib/*.jar; do cp_="$cp_:$j"; done
  echo "$cp_"
}
sides=(new)
for dir in .device/var*/; do [[ -d "$dir/tileattn" ]] && sides+=("$(basename "$dir")"); done
nvidia-smi --query-gpu=name --format=csv,noheader >> "$log"
for side in "${sides[@]}"; do
  timeout 60 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$(classpath "$side")" \
    tileattn.kernels.VsaBenchmark /tmp/vsa-$side quick > "$out/vsabench-$side.log" 2>&1
  grep -E "^[0-9]+x[0-9]+x[0-9]+ S=.*BM64/b64 " "$out/vsabench-$side.log" | sed "s/^/$side  /" >> "$log"
done
for side in "${sides[@]:1}"; do
  TILEATTN_REQUIRE_GPU=1 timeout 90 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
    -jar .device/tileattn/junit-platform-console-standalone.jar execute --disable-banner --disable-ansi-colors \
    --details=summary --class-path "$(classpath "$side")" --select-class tileattn.kernels.VsaKernelsGpuTest \
    --select-class tileattn.kernels.TileAttentionKernelGpuTest > "$out/tests-$side.log" 2>&1
  echo "$side tests: rc $? $(grep -oE "[0-9]+ tests (successful|failed)" "$out/tests-$side.log" | tr '\n' ' ')" >> "$log"
done
cat "$log"
