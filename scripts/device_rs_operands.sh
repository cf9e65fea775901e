#!/usr/bin/env bash
# Run THERE: the twelfth session's A/B of register A operands (RS wgmma) in VSA's 64-row kernels, against the previous
# commit, in one call (docs/benchmarks.md, twelfth session):
#   run(command="bash scripts/device_rs_operands.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/base", ".device/checkers"])
# The forward with Q in registers landed (Sm90Config QREGS); the dQ kernel with Q and dO in registers (checker variants
# sm90_r64q, sm90_r64qp, sm90_q) gave wrong dq at d = 64 and was dropped, so those names now select nothing. The
# fourteenth session ran its tests, VsaBenchmark and DiT phases for branch spread-fold (merged) against main:
#   run(command="PHASES=\"tests vsa\" ROUNDS=1 bash scripts/device_rs_operands.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/base"])
# with the bundle built from that branch (device-build.sh in its worktree, BUNDLE_DIR = this tree's .device/tileattn)
# and .device/base from main.
# Built HERE first:
#   MAVEN_ARGS=-o bash scripts/device-build.sh && rm -rf .device/tileattn/lib       (the bundle: this tree)
#   git worktree add /tmp/wt-base BASE && (cd /tmp/wt-base && mvn -q -o package -DskipTests)
#   mkdir -p .device/base && cp -r /tmp/wt-base/target/{tileattn.jar,test-classes} .device/base/
#   nvcc -O3 -std=c++17 -lineinfo -gencode=arch=compute_90a,code=sm_90a -I src/main/cuda/include \
#     -o bwdcheck src/test/cuda/tile_attention_bwd_check.cu src/test/cuda/tile_attention_bwd_check_fwd.cu
#   nvcc (same flags) -o fwdcheck src/test/cuda/tile_attention_check.cu; gzip both into .device/checkers/
# Phases (each capped): the backward checker's VSA benchmark (dK/dV and dQ kernels timed apart) and the forward
# checker's STA benchmark; their shape fuzz of the 64-row variants against float64; the GPU tests with memcheck over
# VsaKernelsGpuTest; VsaBenchmark and the DiT step on both sides (bundle, base); Nsight Compute.
# VSA_VARIANTS (default base) names the whole-build sides VsaBenchmark and the DiT step run besides the bundle.
# PHASES picks phases (default "bench checks tests vsa ncu", run in that order under a shared DEADLINE, default 560 s;
# ncu: Nsight Compute over the backward's kernels). Logs tarred into $OUT/logs.tgz; a summary last.
set -uo pipefail
out=${OUT:-/tmp/rs-out}
mkdir -p "$out/work"
phases=" ${PHASES:-bench checks tests vsa ncu} "
for c in bwdcheck fwdcheck; do
  [[ -f .device/checkers/$c.gz ]] && gunzip -c ".device/checkers/$c.gz" > "/tmp/$c" && chmod +x "/tmp/$c"
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader | tee "$out/work/gpu.txt"
summary=()
start=$SECONDS
cap() { local l=$(( ${DEADLINE:-560} - (SECONDS - start) )); (( l < $1 )) && echo $(( l > 1 ? l : 1 )) || echo "$1"; }
if [[ $phases == *" bench "* ]]; then
  BENCH_CASES="VSA,Wan STA 4x4x4" timeout $(cap 110) /tmp/bwdcheck bench separate sm90_r64 sm90_r64q sm90_r64qp \
    > "$out/work/bwd_bench.log" 2>&1
  summary+=("bwd bench rc=$?")
  TILEATTN_VARIANTS=wgmma_bm64,wgmma_bm64q BENCH_CASES="Wan STA 3x3x3,Hunyuan STA 3x3x3" timeout $(cap 80) \
    /tmp/fwdcheck bench > "$out/work/fwd_bench.log" 2>&1
  summary+=("fwd bench rc=$?")
fi
if [[ $phases == *" checks "* ]]; then
  timeout $(cap 100) /tmp/bwdcheck check sm90_r64 sm90_r64q sm90_r64qp sm90_q > "$out/work/bwd_check.log" 2>&1
  summary+=("bwd check rc=$? ($(grep -c ' ok$' "$out/work/bwd_check.log") ok, $(grep -c 'FAIL' "$out/work/bwd_check.log") FAIL)")
  TILEATTN_VARIANTS=wgmma_bm64,wgmma_bm64q timeout $(cap 80) /tmp/fwdcheck check > "$out/work/fwd_check.log" 2>&1
  summary+=("fwd check rc=$? ($(grep -c ' ok$' "$out/work/fwd_check.log") ok, $(grep -c 'FAIL' "$out/work/fwd_check.log") FAIL)")
fi
if [[ $phases == *" tests "* ]]; then
  OUT="$out/work/tests" MEMCHECK_CLASSES=tileattn.kernels.VsaKernelsGpuTest timeout $(cap 240) \
    bash scripts/device-test.sh > "$out/work/tests.log" 2>&1
  summary+=("tests rc=$?: $(tail -4 "$out/work/tests.log" | tr '\n' ' ')")
fi
if [[ $phases == *" vsa "* ]]; then
  OUT="$out/work/vsa" VARIANTS=${VSA_VARIANTS-base} ROUNDS=${ROUNDS:-1} FIRST_ATTENTION=${FIRST_ATTENTION:-vsa} timeout $(cap 200) \
    bash scripts/device_variants_vsa.sh > "$out/work/vsa.log" 2>&1
  summary+=("vsa rc=$?")
fi
if [[ $phases == *" ncu "* ]]; then
  # Nsight Compute over the VSA case's first dK/dV and dQ launches, per checker variant in NCU_VARIANTS (the first
  # call: "sm90_r64 sm90_r64q").
  for variant in ${NCU_VARIANTS:-}; do
    BENCH_CASES=VSA timeout $(cap 70) ncu -k "regex:sm90_(dkdv|dq)_kernel" -c 2 --section SpeedOfLight \
      --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section Occupancy \
      /tmp/bwdcheck bench $variant > "$out/work/ncu_$variant.txt" 2>&1
    summary+=("ncu $variant rc=$?")
  done
  # ... and over VsaBenchmark's first coarse backward (gradient in, rows, columns, spread).
  tar xzf .device/jre.tgz -C /tmp && timeout $(cap 90) ncu -k "regex:vsa_(coarse_grad_in|coarse_bwd|spread)" -c 4 \
    --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis /tmp/jre/bin/java \
    --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g \
    -cp .device/tileattn/test-classes:.device/tileattn/tileattn.jar tileattn.kernels.VsaBenchmark /tmp quick \
    > "$out/work/ncu_coarse_bwd.txt" 2>&1
  summary+=("ncu coarse backward rc=$?")
fi
(cd "$out/work" && tar czf "$out/logs.tgz" --exclude='*.bin' .) && rm -rf "$out/work"
echo "---- backward benchmark (ms) / forward check / VsaBenchmark / DiT"
tar xzf "$out/logs.tgz" -C /tmp 2>/dev/null
grep -hE "^VSA|^Wan STA 4" /tmp/bwd_bench.log 2>/dev/null
grep -hE "^(Wan|Hunyuan) STA" /tmp/fwd_bench.log 2>/dev/null
grep -hE "FAIL" /tmp/bwd_check.log /tmp/fwd_check.log 2>/dev/null | head -5
for side in bundle base; do
  echo "$side: $(grep -hE 'forward .* ms \(pool' /tmp/vsa/$side/vsabench.log 2>/dev/null | head -1 | tr -s ' ')"
done
grep -E "^== .*bench dit" /tmp/vsa.log 2>/dev/null
for f in /tmp/ncu_*.txt; do
  [[ -f $f ]] && grep -E "^  (void |tileattn)|^    (Duration|Memory Throughput|L2 Cache Throughput|DRAM Throughput|Compute \(SM\) Throughput|Registers Per)" "$f" | head -40
done
printf '%s\n' "${summary[@]}"
