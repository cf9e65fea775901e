#!/usr/bin/env bash
# Run THERE (the lent GPU machine): a kernel change checked and timed against the commit before it, in one call.
#   1. the new bundle's GPU tests, with compute-sanitizer memcheck (leak check) over AB_MEMCHECK_CLASSES;
#   2. the forward checker (.device/check/check): its shape fuzz against float64 and a racecheck pass for the
#      kernels of AB_CHECK_VARIANTS, then for each checker-only candidate (AB_CANDIDATES) with short limits; its
#      benchmark cases (AB_BENCH_CASES) for those that passed, and those of each warp-specialized variant's checker
#      (.device/varNAME); with AB_PEERS=1 the STA issue's peers (scripts/peers_sta.py --short: cuDNN dense
#      and FlexAttention at STA 3x3x3) on the same machine;
#   3. per side (AB_SIDES, default: old, new and every variant), on the same machine: for a variant,
#      VsaKernelsGpuTest and TileAttentionKernelGpuTest with its fatbins; VsaBenchmark quick; `bench dit` (Wan-2.1
#      1.3B 480p, B=2) with the attention kinds of AB_DIT_NEW (default dense,vsa, for the 2x ratio), AB_DIT_OLD and
#      AB_DIT_VARIANTS (default none: the VSA benchmark picks a variant, the DiT step follows once it is applied);
#   4. (AB_NCU=0 skips) Nsight Compute on VsaBenchmark's first pool, coarse and fine-forward launches of the sides
#      in AB_NCU_SIDES (default: new); with AB_NCU_DIT=1 also on the same launches in the new side's DiT step (VSA).
# AB_QUICK=1 skips steps 1 and 2: with AB_NCU=0 AB_DIT_NEW= AB_SIDES="new var..." it is the shortest look at
# the variants (their tests and VSA times), for a call with little device time left.
# Build here first (the old bundle from the earlier commit in a worktree: its tileattn.jar and test-classes):
#   scripts/device-build.sh
#   git worktree add /tmp/oldtree BASE && (cd /tmp/oldtree && scripts/device-build.sh) && mkdir -p .device/old &&
#     cp -r /tmp/oldtree/.device/tileattn/{tileattn.jar,test-classes} .device/old/
#   nvcc -O3 -std=c++17 -lineinfo -gencode=arch=compute_90a,code=sm_90a -I src/main/cuda/include \
#        -o .device/check/check src/test/cuda/tile_attention_check.cu && gzip -f .device/check/check
# Optional variants: .device/varNAME/tileattn/kernels/FAMILY.fatbin (scripts/build-variants.sh makes them from
# scripts/variants/NAME.patch) run as side varNAME with the new bundle, their fatbins first on the classpath.
# then run(command="bash scripts/device_ab.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/old", ".device/check", ".device/varNAME"...]).
set -uo pipefail
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
t_all=$SECONDS
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"

rc_tests=skipped
if [[ "${AB_QUICK:-0}" == 0 ]]; then
  MEMCHECK_CLASSES="${AB_MEMCHECK_CLASSES:-tileattn.kernels.VsaKernelsGpuTest tileattn.kernels.TileAttentionKernelGpuTest}" \
    timeout "${AB_TESTS_TIMEOUT:-260}" bash scripts/device-test.sh > "$out/tests.log" 2>&1
  rc_tests=$?
fi

rc_check=skipped
if [[ "${AB_QUICK:-0}" == 0 && -e .device/check/check.gz ]]; then
  gunzip -kf .device/check/check.gz
  # The shipped kernels first (ws_n192_grid: one block per work item, as the Java wrapper launches it), then the
  # candidates (AB_CANDIDATES; ws_n192: the same kernel on a persistent grid), each with a short limit and timed only
  # once its fuzz passed. AB_RACECHECK=0 skips the racecheck passes.
  export TILEATTN_VARIANTS="${AB_CHECK_VARIANTS:-wgmma_n64,ws_n192_grid}"
  timeout "${AB_CHECK_TIMEOUT:-120}" .device/check/check check > "$out/check.log" 2>&1
  rc_check=$?
  if [[ "${AB_RACECHECK:-1}" != 0 ]]; then
    timeout 90 compute-sanitizer --tool racecheck --error-exitcode 86 .device/check/check sanitize > "$out/racecheck.log" 2>&1
    rc_check="$rc_check/racecheck $?"
  fi
  read -r -a timed <<< "${AB_TIMED:-ws_n192_grid wgmma_n64}"
  for candidate in ${AB_CANDIDATES-ws_n192}; do
    export TILEATTN_VARIANTS=$candidate
    timeout 45 .device/check/check check > "$out/check-$candidate.log" 2>&1
    rc=$?
    rc_check="$rc_check; $candidate $rc"
    if [[ "${AB_RACECHECK:-1}" != 0 && $rc == 0 ]]; then
      TILEATTN_WS_BLOCKS=2 timeout 60 compute-sanitizer --tool racecheck --error-exitcode 86 .device/check/check sanitize \
        > "$out/racecheck-$candidate.log" 2>&1
      rc_check="$rc_check/racecheck $?"
    fi
    (( rc == 0 )) && timed+=("$candidate")
  done
  unset TILEATTN_VARIANTS
  export BENCH_CASES="${AB_BENCH_CASES:-Hunyuan STA 3x3x3,Wan STA 3x3x3,Hunyuan full}"   # the checker's cases to time
  timeout "${AB_BENCH_TIMEOUT:-150}" .device/check/check bench "${timed[@]}" > "$out/checkbench-new.log" 2>&1
  for dir in .device/var*/; do   # variants of the warp-specialized kernel, whose figures the benchmark gives
    [[ -e "$dir/check.gz" && -e "$dir/tileattn/kernels/tile_attention_sm90_ws.fatbin" ]] || continue
    side=$(basename "$dir")
    gunzip -kf "$dir/check.gz"
    timeout 120 "$dir/check" bench ws_n192 wgmma_n64 > "$out/checkbench-$side.log" 2>&1
  done
fi
[[ "${AB_PEERS:-0}" == 1 ]] && timeout "${AB_PEERS_TIMEOUT:-300}" python3 scripts/peers_sta.py --short > "$out/peers.log" 2>&1

java=/tmp/tileattn-jre/jre/bin/java   # unpacked by device-test.sh
[[ -x "$java" ]] || { mkdir -p /tmp/tileattn-jre && tar xzf .device/jre.tgz -C /tmp/tileattn-jre; }
lib=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.13*' -o -name 'libcublasLt.so.12*' 2>/dev/null | grep -v '\.a$' | sort -r | head -1)
[[ -n "$lib" ]] && export TILEATTN_CUBLASLT="$lib"
# The classpath of a side: old, new, or a variant folder .device/var*/ whose fatbins (tileattn/kernels/NAME.fatbin)
# override the new jar's, since it comes first on the classpath.
side_classpath() {
  local bundle=.device/tileattn prefix=""
  case $1 in old) bundle=.device/old ;; new) ;; *) prefix=".device/$1:" ;; esac
  local cp_="$prefix$bundle/test-classes:$bundle/tileattn.jar"
  for j in .device/tileattn/lib/*.jar; do cp_="$cp_:$j"; done
  echo "$cp_"
}
sides=(old new)
for dir in .device/var*/; do [[ -d "$dir/tileattn" ]] && sides+=("$(basename "$dir")"); done
[[ -n "${AB_SIDES:-}" ]] && read -r -a sides <<< "$AB_SIDES"
declare -A variant_tests
for side in "${sides[@]}"; do
  cp_=$(side_classpath "$side")
  if [[ $side == var* ]]; then   # a variant must pass the tests of the kernels it replaces before its times count
    TILEATTN_REQUIRE_GPU=1 timeout 120 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
      -Xmx8g -jar .device/tileattn/junit-platform-console-standalone.jar execute --disable-banner --disable-ansi-colors \
      --details=summary --class-path "$cp_" --select-class tileattn.kernels.VsaKernelsGpuTest \
      --select-class tileattn.kernels.TileAttentionKernelGpuTest > "$out/tests-$side.log" 2>&1
    variant_tests[$side]="rc $? ($(grep -oE "[0-9]+ tests (successful|failed)" "$out/tests-$side.log" | tr '\n' ' '))"
  fi
  mkdir -p "$out/vsa-$side"
  timeout 120 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp_" \
    tileattn.kernels.VsaBenchmark "$out/vsa-$side" quick > "$out/vsabench-$side.log" 2>&1
  case $side in
    new) attention="${AB_DIT_NEW-dense,vsa}" ;;
    old) attention="${AB_DIT_OLD-}" ;;
    *) attention="${AB_DIT_VARIANTS-}" ;;
  esac
  [[ -n "$attention" ]] && timeout "${AB_DIT_TIMEOUT:-150}" "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -Xmx48g -cp "$cp_" tileattn.cli.Main bench dit --latent 21,60,104 --iters 3 --warmup 1 --attention "$attention" \
    --tsv "$out/dit-$side.tsv" > "$out/dit-$side.log" 2>&1
done

if [[ "${AB_NCU:-1}" != 0 ]]; then   # VSA's first pool, coarse and fine launches (S=32760) under Nsight Compute
  for side in ${AB_NCU_SIDES:-new}; do
    timeout 150 ncu --target-processes all -k "regex:vsa_pool|vsa_coarse_fwd|fwd_bm64" -c 3 --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section WarpStateStats --section Occupancy --section LaunchStats "$java" --add-modules jdk.incubator.vector \
      --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$(side_classpath "$side")" \
      tileattn.kernels.VsaBenchmark "$out/vsa-$side" quick > "$out/ncu-$side.txt" 2>&1
  done
  [[ "${AB_NCU_DIT:-0}" == 1 ]] && timeout 200 ncu --target-processes all -k "regex:vsa_pool|vsa_coarse_fwd|fwd_bm64" -c 3 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy \
      --section LaunchStats "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx48g \
      -cp "$(side_classpath new)" tileattn.cli.Main bench dit --latent 21,60,104 --iters 1 --warmup 0 --attention vsa \
      > "$out/ncu-dit.txt" 2>&1
fi

echo "---- tests (rc $rc_tests)"; [[ -e "$out/tests.log" ]] && tail -n 10 "$out/tests.log"
echo "---- checker (rc $rc_check)"
for f in "$out"/check.log "$out"/check-*.log; do
  [[ -e "$f" ]] && echo "$(basename "$f"): $(grep -cE " ok$" "$f") ok, $(grep -c "FAIL" "$f") FAIL"
done
grep -HsE "RACECHECK SUMMARY" "$out"/racecheck*.log | sed 's|.*/||'
[[ -e "$out/peers.log" ]] && { echo "---- peers"; grep -E "SDPA|Flex" "$out/peers.log" | tail -6; }
for f in "$out"/checkbench-*.log; do
  [[ -e "$f" ]] || continue
  echo "---- forward checker bench, $(basename "$f" .log | sed 's/^checkbench-//')"
  grep -E " (ws_n192|ws_n192_grid|wgmma_n64|wgmma_bm64) +[0-9]" "$f"
done
for side in "${sides[@]}"; do
  [[ -n "${variant_tests[$side]:-}" ]] && echo "---- $side: VSA and forward GPU tests ${variant_tests[$side]}"
  echo "---- $side: VsaBenchmark"; grep -E "^[0-9]+x[0-9]+x[0-9]+ S=" "$out/vsabench-$side.log" | grep wgmma
  [[ -e "$out/dit-$side.log" ]] && { echo "---- $side: bench dit"; grep -E " step +[0-9.]+ ms" "$out/dit-$side.log"; }
done
for side in old new dit; do
  [[ -e "$out/ncu-$side.txt" ]] || continue
  echo "---- $side: ncu"
  grep -E "^  tileattn|^    (Duration|Memory Throughput|L2 Cache Throughput|DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Warp Cycles Per Issued|Dynamic Shared|Static Shared|L1/TEX Hit|L2 Hit)" "$out/ncu-$side.txt" | head -40
  grep -iE "stall|cycles being stalled" "$out/ncu-$side.txt" | head -4
done
echo "---- $(cat "$out/gpu.txt"); $((SECONDS - t_all)) s in all"
# Everything in one archive: the tool brings back only a few files from $OUT.
(cd "$out" && tar czf /tmp/ab-logs.tgz --exclude='*.bin' . && find . -mindepth 1 -delete && mv /tmp/ab-logs.tgz logs.tgz)
