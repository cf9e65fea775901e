#!/bin/bash
# Run THERE: VSA fine-forward variants against the bundle's kernels, each variant a folder holding only
# tileattn/kernels/<family>.fatbin, put ahead of the jar on the class path (resources resolve first match):
#   run(command="VARIANTS=\"varA varB\" bash scripts/device_variants_vsa.sh", carry=[".device/tileattn", ".device/jre.tgz", ".device/varA", ".device/varB"])
# For each side (the bundle as is, then each variant): VsaBenchmark quick (random inputs), then `bench dit
# --attention vsa` (Wan-2.1 1.3B 480p, B = 2; the bundle's with the dense step too; the variants' with the jar
# VARIANT_JAR when given, e.g. one whose defaults pick the variant's entry points). Logs in $OUT.
set -o pipefail
bundle=.device/tileattn
out=${OUT:-/tmp/out}
mkdir -p "$out" /tmp/jre
tar xzf .device/jre.tgz -C /tmp/jre || exit 2
java=/tmp/jre/jre/bin/java
lib=$(find /usr/local /usr/lib /opt -name 'libcublasLt.so.13*' -o -name 'libcublasLt.so.12*' 2>/dev/null | grep -v '\.a$' | sort -r | head -1)
[[ -n "$lib" ]] && export TILEATTN_CUBLASLT="$lib"
opts=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
for side in bundle ${VARIANTS:-}; do
  pre=""; [[ "$side" != bundle ]] && pre=".device/$side:"
  mkdir -p "$out/$side"
  timeout ${VSA_TIMEOUT:-100} "$java" "${opts[@]}" -Xmx16g -cp "${pre}$bundle/test-classes:$bundle/tileattn.jar" \
    tileattn.kernels.VsaBenchmark "$out/$side" quick > "$out/$side/vsabench.log" 2>&1
  echo "== $side VsaBenchmark (rc $?)"; grep -E "^[0-9]+x.*S=" "$out/$side/vsabench.log"
done
for side in bundle ${VARIANTS:-}; do
  pre=""; [[ "$side" != bundle ]] && pre=".device/$side:"
  attention=vsa jar=${VARIANT_JAR:-$bundle/tileattn.jar}
  [[ "$side" == bundle ]] && attention=dense,vsa jar=$bundle/tileattn.jar
  timeout ${DIT_TIMEOUT:-90} "$java" "${opts[@]}" -Xmx48g -cp "${pre}$jar" tileattn.cli.Main bench dit \
    --latent 21,60,104 --attention $attention --iters 3 --warmup 1 > "$out/$side/dit.log" 2>&1
  echo "== $side bench dit (rc $?): $(grep -E ' step ' "$out/$side/dit.log" | tr -s ' ' | tr '\n' ';')"
done
