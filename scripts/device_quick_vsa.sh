#!/usr/bin/env bash
# Run THERE: the shortest check of a VSA change that a scarce device allows, in about 200 s. The GPU tests of the VSA
# and backward kernels (scripts/device-test.sh with TEST_CLASSES, no sanitizer), then VsaBenchmark quick on the bundle and on .device/base (a whole build, e.g.
# main's), in that order, so that a call cut short still has the verdict:
#   run(command="bash scripts/device_quick_vsa.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/base"])
# Built HERE as scripts/device_rs_operands.sh's header says. TEST_CLASSES overrides the test classes; logs in $OUT.
# BWD_VARIANTS="sm90_r64 sm90_r64s" (with ".device/checkers" carried, its bwdcheck.gz built from the branch that holds
# the variants) adds the backward checker last: those variants against float64, then timed on its VSA case.
set -uo pipefail
out=${OUT:-/tmp/quick-vsa}
mkdir -p "$out"
OUT="$out/tests" MEMCHECK=0 \
  TEST_CLASSES="${TEST_CLASSES:-tileattn.kernels.VsaKernelsGpuTest tileattn.kernels.TileAttentionBackwardKernelGpuTest}" \
  timeout "${TEST_TIMEOUT:-110}" bash scripts/device-test.sh > "$out/tests.log" 2>&1
echo "tests rc=$?"
sed -n '/^---- \(failures\|summary\)/,$p' "$out/tests.log"
OUT="$out/vsa" VARIANTS=base ROUNDS=0 VSA_TIMEOUT="${VSA_TIMEOUT:-45}" bash scripts/device_variants_vsa.sh
if [[ -n "${BWD_VARIANTS:-}" && -f .device/checkers/bwdcheck.gz ]]; then
  gunzip -c .device/checkers/bwdcheck.gz > /tmp/bwdcheck && chmod +x /tmp/bwdcheck
  timeout "${CHECK_TIMEOUT:-60}" /tmp/bwdcheck check $BWD_VARIANTS > "$out/bwd_check.log" 2>&1
  echo "bwd check rc=$? ($(grep -c ' ok$' "$out/bwd_check.log") ok, $(grep -c 'FAIL' "$out/bwd_check.log") FAIL)"
  grep 'FAIL' "$out/bwd_check.log" | head -10
  BENCH_CASES=VSA timeout "${BENCH_TIMEOUT:-40}" /tmp/bwdcheck bench separate $BWD_VARIANTS > "$out/bwd_bench.log" 2>&1
  echo "bwd bench rc=$?"
  grep -E '^VSA' "$out/bwd_bench.log"
fi
