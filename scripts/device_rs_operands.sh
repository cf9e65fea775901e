#!/usr/bin/env bash
# Run THERE: the twelfth session's A/B of register A operands (RS wgmma) in VSA's 64-row kernels: the fine forward
# with Q in registers (S = Q K^T reads only K from shared memory) and the dQ kernel with Q and dO in registers
# (S and dP read only K and V), against the previous commit, in one call:
#   run(command="bash scripts/device_rs_operands.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/base", ".device/checkers"])
# Built HERE first:
#   MAVEN_ARGS=-o bash scripts/device-build.sh && rm -rf .device/tileattn/lib       (the bundle: this tree)
#   git worktree add /tmp/wt-base BASE && (cd /tmp/wt-base && mvn -q -o package -DskipTests)
#   mkdir -p .device/base && cp -r /tmp/wt-base/target/{tileattn.jar,test-classes} .device/base/
#   nvcc -O3 -std=c++17 -lineinfo -gencode=arch=compute_90a,code=sm_90a -I src/main/cuda/include \
#     -o bwdcheck src/test/cuda/tile_attention_bwd_check.cu src/test/cuda/tile_attention_bwd_check_fwd.cu
#   nvcc (same flags) -o fwdcheck src/test/cuda/tile_attention_check.cu; gzip both into .device/checkers/
# Phases (each capped): the backward checker's shape fuzz of the 64-row variants against float64 gradients, its
# VSA benchmark (dK/dV and dQ kernels timed apart); the forward checker's fuzz of wgmma_bm64 and wgmma_bm64q; the
# GPU tests with memcheck over VsaKernelsGpuTest; VsaBenchmark and the DiT step on both sides (bundle, base).
# PHASES="checks bench tests vsa" picks phases (default all). Logs tarred into $OUT/logs.tgz; a summary last.
set -uo pipefail
out=${OUT:-/tmp/rs-out}
mkdir -p "$out/work"
phases=" ${PHASES:-checks bench tests vsa} "
for c in bwdcheck fwdcheck; do gunzip -c ".device/checkers/$c.gz" > "/tmp/$c" && chmod +x "/tmp/$c"; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader | tee "$out/work/gpu.txt"
summary=()
if [[ $phases == *" checks "* ]]; then
  timeout ${CHECK_TIMEOUT:-150} /tmp/bwdcheck check sm90_r64 sm90_r64q sm90_r64qp sm90_q > "$out/work/bwd_check.log" 2>&1
  summary+=("bwd check rc=$? ($(grep -c ' ok$' "$out/work/bwd_check.log") ok, $(grep -c 'FAIL' "$out/work/bwd_check.log") FAIL)")
  TILEATTN_VARIANTS=wgmma_bm64,wgmma_bm64q timeout ${CHECK_TIMEOUT:-150} /tmp/fwdcheck check > "$out/work/fwd_check.log" 2>&1
  summary+=("fwd check rc=$? ($(grep -c ' ok$' "$out/work/fwd_check.log") ok, $(grep -c 'FAIL' "$out/work/fwd_check.log") FAIL)")
fi
if [[ $phases == *" bench "* ]]; then
  BENCH_CASES="VSA,Wan STA 4x4x4" timeout ${BENCH_TIMEOUT:-150} /tmp/bwdcheck bench separate sm90_r64 sm90_r64q sm90_r64qp \
    > "$out/work/bwd_bench.log" 2>&1
  summary+=("bwd bench rc=$?")
  TILEATTN_VARIANTS=wgmma_bm64,wgmma_bm64q BENCH_CASES="Wan STA 3x3x3,Hunyuan STA 3x3x3" timeout ${BENCH_TIMEOUT:-100} \
    /tmp/fwdcheck bench > "$out/work/fwd_bench.log" 2>&1
  summary+=("fwd bench rc=$?")
fi
if [[ $phases == *" tests "* ]]; then
  OUT="$out/work/tests" MEMCHECK_CLASSES=tileattn.kernels.VsaKernelsGpuTest timeout ${TEST_TIMEOUT:-300} \
    bash scripts/device-test.sh > "$out/work/tests.log" 2>&1
  summary+=("tests rc=$?: $(tail -4 "$out/work/tests.log" | tr '\n' ' ')")
fi
if [[ $phases == *" vsa "* ]]; then
  OUT="$out/work/vsa" VARIANTS=base ROUNDS=${ROUNDS:-1} FIRST_ATTENTION=${FIRST_ATTENTION:-vsa} timeout ${VSA_PHASE_TIMEOUT:-400} \
    bash scripts/device_variants_vsa.sh > "$out/work/vsa.log" 2>&1
  summary+=("vsa rc=$?")
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
printf '%s\n' "${summary[@]}"
