#!/usr/bin/env bash
# Run THERE (the lent GPU machine): VSA's GPU tests (memcheck with leak check), VsaBenchmark (quick) and the DiT
# step benchmark with the PyTorch peer, in one call, for the coarse-stage changes:
#   run(command="bash scripts/device_vsa_dit.sh", carry=[".device/tileattn", ".device/jre.tgz"])
set -uo pipefail
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
MEMCHECK_CLASSES="tileattn.kernels.VsaKernelsGpuTest" timeout 190 bash scripts/device-test.sh > "$out/tests.log" 2>&1
rc_tests=$?
OUT="$out" timeout 110 bash scripts/device-training.sh vsa > "$out/vsa-stage.log" 2>&1
rc_vsa=$?
OUT="$out/dit" DIT_TESTS=0 timeout 285 bash scripts/device_dit.sh > "$out/dit.log" 2>&1
rc_dit=$?
echo "---- tests (rc $rc_tests)"; tail -n 12 "$out/tests.log"
echo "---- VsaBenchmark (rc $rc_vsa)"; grep -vE "^\s*$|WARNING" "$out/vsa.log" | tail -12
echo "---- DiT (rc $rc_dit)"; tail -n 14 "$out/dit.log"
