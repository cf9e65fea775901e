#!/usr/bin/env bash
# Builds kernel variants for scripts/device_ab.sh HERE: each scripts/variants/NAME.patch (a git diff of
# src/main/cuda, after a preamble whose line "families: a b" names the kernel families it changes) is applied to a
# copy of src/main/cuda, and those families are compiled for sm_90a into .device/varNAME/tileattn/kernels/, where
# device_ab.sh finds them and runs them as side varNAME; a variant of the warp-specialized forward also gets the
# forward checker built with it (.device/varNAME/check.gz). A variant that wins is applied to src/main/cuda for real.
# Usage: scripts/build-variants.sh [NAME...]   (default: every patch)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
names=("$@")
if (( ${#names[@]} == 0 )); then
  for p in scripts/variants/*.patch; do names+=("$(basename "$p" .patch)"); done
fi
for name in "${names[@]}"; do
  patch_file="scripts/variants/$name.patch"
  families=$(sed -n 's/^families: //p' "$patch_file" | head -1)
  [[ -n "$families" ]] || { echo "$patch_file: no 'families:' line" >&2; exit 2; }
  work=$(mktemp -d)
  mkdir -p "$work/src/main" "$work/src/test" && cp -r src/main/cuda "$work/src/main/" && cp -r src/test/cuda "$work/src/test/"
  (cd "$work" && git apply -p1 "$root/$patch_file")
  out=".device/var$name/tileattn/kernels"
  rm -rf ".device/var$name" && mkdir -p "$out"
  for family in $families; do
    nvcc -O3 -std=c++17 -fatbin -gencode=arch=compute_90a,code=sm_90a -I "$work/src/main/cuda/include" -Xptxas -v \
      -o "$out/$family.fatbin" "$work/src/main/cuda/$family.cu" > "$out/../../$family.ptxas.txt" 2>&1
    echo "var$name: $family.fatbin ($(grep -c 'spill stores' "$out/../../$family.ptxas.txt") entries," \
         "$(grep -E '[1-9][0-9]* bytes spill stores' -c "$out/../../$family.ptxas.txt") with spills)"
  done
  if [[ " $families " == *" tile_attention_sm90_ws "* ]]; then
    # the forward checker with the variant's kernels: device_ab.sh times its benchmark for warp-specialized variants
    nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I "$work/src/main/cuda/include" \
      -o ".device/var$name/check" "$work/src/test/cuda/tile_attention_check.cu" && gzip -f ".device/var$name/check"
    echo "var$name: forward checker"
  fi
  rm -rf "$work"
done
