#!/usr/bin/env bash
# Run THERE (needs nvcc only, no bundle): the read floor of VSA's fine kernels (src/test/cuda/vsa_read_floor.cu),
# timed, then once more under Nsight Compute for the L2's and DRAM's share of their peaks per reader:
#   run(command="bash scripts/device_read_floor.sh")
# Logs in $OUT; the timing table is printed last.
set -uo pipefail
out=${OUT:-/tmp/read-floor}
mkdir -p "$out"
nvcc -O3 -std=c++17 -arch=sm_90a -I src/main/cuda/include -o /tmp/vsa_read_floor src/test/cuda/vsa_read_floor.cu \
  > "$out/build.log" 2>&1 || { cat "$out/build.log"; exit 2; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1
timeout 120 /tmp/vsa_read_floor "$@" > "$out/floor.txt" 2>&1
rc=$?
if [[ "${NCU:-1}" == 1 ]] && command -v ncu > /dev/null; then
  READ_FLOOR_ONCE=1 timeout 180 ncu -k regex:read_ --metrics \
    gpu__time_duration.sum,lts__t_throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sector_hit_rate.pct,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__m_xbar2l1tex_read_bytes.sum.per_second \
    /tmp/vsa_read_floor "$@" > "$out/ncu.txt" 2>&1
  echo "ncu rc=$?"
  grep -E '^  read_|duration|lts__|dram__|xbar2l1tex' "$out/ncu.txt" | sed 's/  */ /g' | head -120
fi
cat "$out/gpu.txt"
cat "$out/floor.txt"
echo "floor rc=$rc"
