#!/bin/bash
# Run THERE: VSA fine-forward variants against the bundle's kernels, each variant a folder holding only
# tileattn/kernels/<family>.fatbin, put ahead of the jar on the class path (resources resolve first match):
#   run(command="VARIANTS=\"varA varB\" bash scripts/device_variants_vsa.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/varA", ".device/varB"])
# A variant folder holding a tileattn.jar (and test-classes/) is a whole build instead, run in place of the bundle's
# jar (e.g. the previous commit's, for an A/B of a change that touches Java too).
# For each side (the bundle as is, then each variant): VsaBenchmark quick (random inputs), then `bench dit
# --attention vsa` (Wan-2.1 1.3B 480p, B = 2; the bundle's with the dense step too; the variants' with the jar
# VARIANT_JAR when given, e.g. one whose defaults pick the variant's entry points), ROUNDS times over the sides
# (default 1), alternating, since the step drifts by a few ms from run to run; the bundle's runs take the attentions
# FIRST_ATTENTION (round 1, default dense,vsa) and LATER_ATTENTION (default vsa). NCU=1 adds, per side, Nsight Compute
# over the first NCU_COUNT (default 3) launches in a DiT step whose names match NCU_KERNELS (default: VSA's coarse
# kernels and the Hopper 64-row fine forward). VSABENCH=0 skips VsaBenchmark, ROUNDS=0 the DiT runs. Logs in $OUT.
set -o pipefail
bundle=.device/tileattn
out=${OUT:-/tmp/out}
mkdir -p "$out" /tmp/jre
tar xzf .device/jre.tgz -C /tmp/jre || exit 2
java=/tmp/jre/jre/bin/java
lib=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.13*' -o -name 'libcublasLt.so.12*' 2>/dev/null | grep -v '\.a$' | sort -r | head -1)
[[ -n "$lib" ]] && export TILEATTN_CUBLASLT="$lib"
opts=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
# The class path of side $1: a whole build's folder, or a variant's fatbins ahead of jar $2 (and classes $3, if any).
classpath() {
  local side=$1 jar=$2 classes=$3
  if [[ -f ".device/$side/tileattn.jar" ]]; then echo ".device/$side/test-classes:.device/$side/tileattn.jar"; return; fi
  local cp=$jar
  [[ -n "$classes" ]] && cp="$classes:$cp"
  [[ "$side" != bundle ]] && cp=".device/$side:$cp"
  echo "$cp"
}
for side in bundle ${VARIANTS:-}; do
  mkdir -p "$out/$side"
  [[ "${VSABENCH:-1}" == 0 ]] && continue
  timeout ${VSA_TIMEOUT:-100} "$java" "${opts[@]}" -Xmx16g \
    -cp "$(classpath "$side" "$bundle/tileattn.jar" "$bundle/test-classes")" \
    tileattn.kernels.VsaBenchmark "$out/$side" quick > "$out/$side/vsabench.log" 2>&1
  echo "== $side VsaBenchmark (rc $?)"; grep -E "^[0-9]+x.*S=" "$out/$side/vsabench.log"
done
for round in $(seq 1 "${ROUNDS:-1}"); do
  for side in bundle ${VARIANTS:-}; do
    attention=vsa jar=${VARIANT_JAR:-$bundle/tileattn.jar}
    [[ "$side" == bundle ]] && attention=${FIRST_ATTENTION:-dense,vsa} jar=$bundle/tileattn.jar
    [[ "$side" == bundle && "$round" -gt 1 ]] && attention=${LATER_ATTENTION:-vsa}
    timeout ${DIT_TIMEOUT:-90} "$java" "${opts[@]}" -Xmx48g -cp "$(classpath "$side" "$jar" "")" tileattn.cli.Main \
      bench dit --latent 21,60,104 --attention $attention --iters 3 --warmup 1 > "$out/$side/dit$round.log" 2>&1
    echo "== $side bench dit, round $round (rc $?): $(grep -E ' step ' "$out/$side/dit$round.log" | tr -s ' ' | tr '\n' ';')"
  done
done
if [[ "${NCU:-0}" == 1 ]]; then
  for side in bundle ${VARIANTS:-}; do
    jar=${VARIANT_JAR:-$bundle/tileattn.jar}
    [[ "$side" == bundle ]] && jar=$bundle/tileattn.jar
    timeout ${NCU_TIMEOUT:-150} ncu --target-processes all -k "regex:${NCU_KERNELS:-vsa_coarse|fwd_bm64}" -c ${NCU_COUNT:-3} \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
      --section LaunchStats "$java" "${opts[@]}" -Xmx48g -cp "$(classpath "$side" "$jar" "")" tileattn.cli.Main \
      bench dit --latent 21,60,104 --attention vsa --iters 1 --warmup 0 > "$out/$side/ncu-dit.txt" 2>&1
    echo "== $side ncu (rc $?)"
    grep -E "^  tileattn|^    (Duration|Memory Throughput|L2 Cache Throughput|DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Warp Cycles Per Issued|Dynamic Shared|Grid Size)" "$out/$side/ncu-dit.txt" | head -60
  done
fi
