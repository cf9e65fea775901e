#!/usr/bin/env bash
# Compiles the CUDA kernels into fatbins that travel inside the jar. Maven runs this in generate-resources.
#
# Convention for kernel sources (other kernel families follow it):
#   - one file src/main/cuda/NAME.cu per kernel family; it becomes the jar resource tileattn/kernels/NAME.fatbin,
#     loaded at run time by tileattn.kernels.KernelLibrary ("NAME" is the family name used from Java);
#   - entry points are extern "C" __global__ functions named tileattn_..., so Java finds them by plain name;
#   - shared device code lives in headers under src/main/cuda/include/tileattn/ (#include "tileattn/x.cuh");
#     touching any header rebuilds every family;
#   - each family gets one Java wrapper in tileattn.kernels that checks arguments and launches it.
# Every fatbin holds sm_90a machine code (Hopper-only instructions such as wgmma allowed), sm_80 machine code,
# and compute_80 PTX that newer GPUs compile at load. No --use_fast_math: it makes conversions flush subnormals
# to zero, and any kernel that wants fast intrinsics should ask for them by name.
# The ptxas report (registers, shared memory, spills per entry point and architecture) is kept in
# target/nvcc/NAME.ptxas.txt. A family whose fatbin is newer than its .cu and every header is not rebuilt.
#
# Usage: build.sh OUTPUT_DIR REPORT_DIR      (Maven passes target/classes/tileattn/kernels and target/nvcc)
set -euo pipefail

src_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${1:?usage: build.sh OUTPUT_DIR REPORT_DIR}"
report_dir="${2:?usage: build.sh OUTPUT_DIR REPORT_DIR}"

nvcc_bin="$(command -v nvcc || true)"
if [[ -z "$nvcc_bin" && -x /usr/local/cuda/bin/nvcc ]]; then
  nvcc_bin=/usr/local/cuda/bin/nvcc
fi
if [[ -z "$nvcc_bin" ]]; then
  echo "[tileattn] nvcc not found (PATH, /usr/local/cuda/bin): building without CUDA kernels; the jar will use the CPU path."
  exit 0
fi

mkdir -p "$out_dir" "$report_dir"

newest_header=0
while IFS= read -r -d '' header; do
  stamp=$(stat -c %Y "$header")
  (( stamp > newest_header )) && newest_header=$stamp
done < <(find "$src_dir/include" -type f -print0 2>/dev/null)

flags=(-fatbin -O3 -std=c++17 -lineinfo -Xptxas -v
       -gencode=arch=compute_90a,code=sm_90a
       -gencode=arch=compute_80,code=sm_80
       -gencode=arch=compute_80,code=compute_80
       -I "$src_dir/include")

families=()
for cu in "$src_dir"/*.cu; do
  [[ -e "$cu" ]] || continue
  name="$(basename "$cu" .cu)"
  families+=("$name")
  fatbin="$out_dir/$name.fatbin"
  if [[ -f "$fatbin" ]]; then
    fat_stamp=$(stat -c %Y "$fatbin")
    if (( fat_stamp > $(stat -c %Y "$cu") && fat_stamp > newest_header )); then
      continue
    fi
  fi
  report="$report_dir/$name.ptxas.txt"
  start=$SECONDS
  if ! "$nvcc_bin" "${flags[@]}" -o "$fatbin.tmp" "$cu" 2> "$report"; then
    cat "$report" >&2
    rm -f "$fatbin.tmp"
    echo "[tileattn] nvcc failed on $cu (report above, also in $report)" >&2
    exit 1
  fi
  mv "$fatbin.tmp" "$fatbin"
  spills=$(grep -cE '[1-9][0-9]* bytes spill (stores|loads)' "$report" || true)
  if (( spills > 0 )); then spill_note="$spills lines report register SPILLS"; else spill_note="no spills"; fi
  echo "[tileattn] nvcc $name.cu -> $name.fatbin in $((SECONDS - start)) s, $spill_note (ptxas report: $report)"
done

# The jar lists its kernel families here so that `tileattn info` can say what it carries.
printf '%s\n' "${families[@]}" > "$out_dir/families.txt"
