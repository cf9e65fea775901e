#!/usr/bin/env bash
# One device call that chains the repo's device scripts, each under its own time limit, so that one machine start
# serves several checks. Stages, in the order given: tests (scripts/device-test.sh, MEMCHECK honoured), workload
# (scripts/device-workload.sh), bench (scripts/device-bench.sh), ncu (Nsight Compute on the warp-specialized STA
# forward at the HunyuanVideo 3x3x3 case, checker binary in .device/hopper5/check built here with
#   nvcc -O3 -std=c++17 -I src/main/cuda/include -gencode=arch=compute_90a,code=sm_90a \
#        -o .device/hopper5/check src/test/cuda/tile_attention_check.cu
# ), ncuvsa (Nsight Compute on VSA's pool, coarse and fine forward kernels through tileattn.kernels.VsaBenchmark),
# or "DIR/run.sh [args]" (one quoted word) for a helper's folder, run with OUT=$OUT/DIR's name. Each stage's
# output goes to $OUT/round-NAME.txt; the tails are printed last. Usage: run(command="bash scripts/device_round.sh tests workload", carry=[".device/tileattn", ".device/jre.tgz"])
set -uo pipefail
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
export OUT="$out"
start=$SECONDS
status=()
for stage in "$@"; do
  t0=$SECONDS
  script=${stage%% *}
  name=$(basename "$(dirname "$script")")
  log="$out/round-$name.txt"
  case $stage in
    tests) log="$out/round-tests.txt"; timeout "${TESTS_TIMEOUT:-300}" bash scripts/device-test.sh > "$log" 2>&1 ;;
    workload) log="$out/round-workload.txt"; timeout "${WORKLOAD_STAGE_TIMEOUT:-240}" bash scripts/device-workload.sh > "$log" 2>&1 ;;
    bench) log="$out/round-bench.txt"; timeout "${BENCH_STAGE_TIMEOUT:-420}" bash scripts/device-bench.sh > "$log" 2>&1 ;;
    ncu) log="$out/round-ncu.txt"
         timeout "${NCU_TIMEOUT:-150}" ncu -k regex:tile_attention -c 1 --section SpeedOfLight --section ComputeWorkloadAnalysis \
             --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats \
             --section LaunchStats .device/hopper5/check profile "${NCU_VARIANT:-ws_n192}" > "$log" 2>&1 ;;
    ncuvsa) log="$out/round-ncuvsa.txt"   # VSA's pool, coarse and fine forward kernels, first launch of each
         rm -rf /tmp/jre && mkdir -p /tmp/jre && tar xzf .device/jre.tgz -C /tmp/jre
         timeout "${NCU_TIMEOUT:-200}" ncu --target-processes all -k "regex:vsa_pool|vsa_coarse_fwd|fwd_bm64" -c 3 \
             --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
             --section LaunchStats /tmp/jre/jre/bin/java --add-modules jdk.incubator.vector \
             --enable-native-access=ALL-UNNAMED -Xmx24g -cp .device/tileattn/test-classes:.device/tileattn/tileattn.jar \
             tileattn.kernels.VsaBenchmark "$out" quick > "$log" 2>&1 ;;
    *) mkdir -p "$out/$name"
       # shellcheck disable=SC2086
       OUT="$out/$name" timeout "${STAGE_TIMEOUT:-300}" bash $stage > "$log" 2>&1 ;;
  esac
  status+=("$stage: exit $?, $((SECONDS - t0)) s")
done
for stage in "$@"; do
  case $stage in
    tests) tail -n 25 "$out/round-tests.txt" ;;
    workload) tail -n 40 "$out/round-workload.txt" ;;
    bench) tail -n 40 "$out/round-bench.txt" ;;
    ncuvsa) grep -E "^  tileattn|Duration|Throughput|Registers|Achieved Occupancy|Stall|L2 Hit" "$out/round-ncuvsa.txt" | head -60 ;;
    ncu) grep -E "Duration|Throughput|Pipe|Issue|Eligible|Active Warps|Warp Cycles|Stall|L2 Hit|L1/TEX Hit|Registers|Shared Memory Config|Achieved" "$out/round-ncu.txt" | head -45 ;;
    *) echo "---- $stage"; tail -n 40 "$out/round-$(basename "$(dirname "${stage%% *}")").txt" ;;
  esac
done
echo "---- round: ${status[*]}; $((SECONDS - start)) s in all"
