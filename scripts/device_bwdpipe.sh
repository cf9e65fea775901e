#!/usr/bin/env bash
# Device run for branch bwdpipe (Hopper backward: fused dQ and pipelined variants of tile_attention_bwd_sm90.cu),
# from the repository root of /work/main:
#   run(command="bash .device/bwdpipe/run.sh", carry=[".device/bwdpipe"])
# .device/bwdpipe/ holds `check` (this branch's tile_attention_bwd_check), `check_main` (main's, the old kernels,
# timed in the same call), ptxas.txt (this branch's ptxas report of the checker) and src/ (to rebuild: REBUILD=1).
# Both checkers were built with
#   nvcc -O3 -std=c++17 -lineinfo -gencode=arch=compute_90a,code=sm_90a -I src/main/cuda/include \
#        -o CHECK src/test/cuda/tile_attention_bwd_check.cu src/test/cuda/tile_attention_bwd_check_fwd.cu
# Phases, each under a time cap and a shared deadline (DEADLINE, default 225 s): SASS mix of the sm90 kernels, the
# benchmark at HunyuanVideo STA and Wan STA (old and new binaries), the shape fuzz of the new variants, HunyuanVideo
# dense for main's sm90 and the fastest new variant at HunyuanVideo STA, memcheck and racecheck on small cases.
# Logs under $OUT; a summary table last.
# `bash .device/bwdpipe/run.sh java` (carry .device/bwdpipe and .device/jre.tgz) instead runs the Java GPU tests of
# the backward (TileAttentionBackwardKernelGpuTest, HOPPER_FUSED included) from the bundle in .device/bwdpipe/tileattn
# (scripts/device-build.sh .device/bwdpipe/tileattn .device/jre.tgz, run from this branch).
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/bwdpipe-out}
mkdir -p "$out"
if [[ ${1:-} == java ]]; then
  rt=/tmp/bwdpipe-jre; mkdir -p $rt && tar xzf "$here/../jre.tgz" -C $rt
  cp="$here/tileattn/test-classes:$here/tileattn/tileattn.jar"; for j in "$here"/tileattn/lib/*.jar; do cp="$cp:$j"; done
  TILEATTN_REQUIRE_GPU=1 timeout 200 $rt/jre/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    -Xmx16g -jar "$here/tileattn/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors \
    --details=tree --class-path "$cp" --select-class tileattn.kernels.TileAttentionBackwardKernelGpuTest > "$out/java.log" 2>&1
  echo "java rc=$?"; grep -E "tests (successful|failed)|backward .*relative|✘" "$out/java.log" | head -40
  exit 0
fi
start=$SECONDS
left() { echo $(( ${DEADLINE:-225} - (SECONDS - start) )); }
cap() { local l; l=$(left); (( l < $1 )) && echo "$l" || echo "$1"; }  # min(cap, time left)
new="$here/check"
old="$here/check_main"
if [[ -n "$REBUILD" ]]; then
  nvcc -O3 -std=c++17 -lineinfo -gencode=arch=compute_90a,code=sm_90a -I "$here/src/main/cuda/include" -o /tmp/bwdpipe_check \
    "$here/src/test/cuda/tile_attention_bwd_check.cu" "$here/src/test/cuda/tile_attention_bwd_check_fwd.cu" > "$out/nvcc.log" 2>&1
  echo "rebuild rc=$?"; new=/tmp/bwdpipe_check
fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader > "$out/gpu.txt" 2>&1

# SASS of the new checker's sm90 kernels (bf16): tensor, special-function, local-memory, barrier and reduction counts.
cuobjdump -sass "$new" > /tmp/bwdpipe_sass.txt 2>&1
python3 - > "$out/sass.txt" <<'PY'
import re, collections
cur=None; mix=collections.OrderedDict()
for line in open('/tmp/bwdpipe_sass.txt'):
    m=re.search(r'Function : (\S+)', line)
    if m: cur=m.group(1); mix[cur]=collections.Counter(); continue
    m=re.search(r'/\*[0-9a-f]{4,5}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', line)
    if cur and m: mix[cur][m.group(1)]+=1
for f,c in mix.items():
    m=re.search(r'(sm90_dkdv|sm90_dq)_kernelI13__nv_bfloat16NS_\d+Sm90Bwd(?:Kv|Q)ConfigIL(.*?)EEEEEv', f)
    if not m: continue
    args=','.join(re.findall(r'L[ib](\d+)E', 'L'+m.group(2)))
    print(f"{m.group(1):9s} <{args:16s}>", ' '.join(f"{k}={c[k]}" for k in
          ['HGMMA','MUFU','LDL','STL','BAR','WARPGROUP','REDG','RED','UBLKRED','SYNCS']))
PY

bench() {  # $1 log, $2 binary, $3 cases, $4 cap seconds, then variants
  local log=$1 bin=$2 cases=$3 lim; lim=$(cap "$4"); shift 4
  if (( lim < 10 )); then echo "skipped (time)" > "$out/$log.log"; return; fi
  BENCH_CASES="$cases" timeout "$lim" "$bin" bench "$@" > "$out/$log.log" 2>&1; echo "rc=$?" >> "$out/$log.log"
}
bench hsta_old "$old" "Hunyuan STA" 30 sm90 sm90_dq128
bench hsta_new "$new" "Hunyuan STA" 60 sm90 sm90_fn sm90_fnb sm90_fk sm90_fkb sm90_pipe sm90_pipe128
bench wan_old "$old" "Wan STA 3x3x3" 15 sm90_r64 sm90
bench wan_new "$new" "Wan STA 3x3x3" 20 sm90_r64 sm90_r64f sm90_fn sm90_fnb sm90_pipe

lim=$(cap 60)
if (( lim >= 10 )); then
  timeout "$lim" "$new" check sm90_fn sm90_fnb sm90_fk sm90_fkb sm90_pipe sm90_r64f sm90 sm90_r64 > "$out/fuzz.log" 2>&1
  echo "rc=$?" >> "$out/fuzz.log"
else echo "skipped (time)" > "$out/fuzz.log"; fi

# Dense: main's sm90 and the fastest checked new variant at HunyuanVideo STA.
parse() {  # bench logs -> "case|variant|bwd|dkdv|dq|relL2|check" lines
  python3 - "$@" <<'PY'
import sys, re
for path in sys.argv[1:]:
    try: lines = open(path).read().splitlines()
    except OSError: continue
    for l in lines:
        f = l.split()
        if len(f) < 10 or f[-1] not in ("ok", "FAIL") or not (l.startswith("Hunyuan") or l.startswith("Wan")): continue
        i = next((k for k, x in enumerate(f) if re.match(r"(sm90|separate|bm64|sep_)", x)), None)
        if i is None: continue
        print("|".join([" ".join(f[:i]), f[i], f[i + 1], f[i + 3], f[i + 4], f[-2], f[-1]]))
PY
}
best=$(parse "$out/hsta_new.log" | awk -F'|' '$7 == "ok" {print $3, $2}' | sort -g | head -1 | cut -d' ' -f2)
best=${best:-sm90_fn}
bench dense_old "$old" "Hunyuan dense" 25 sm90
BENCH_SPLIT=0 bench dense_new "$new" "Hunyuan dense" 25 "$best"

for tool in memcheck racecheck; do
  lim=$(cap 30)
  if (( lim < 10 )); then echo "skipped (time)" > "$out/$tool.log"; continue; fi
  extra=; [[ $tool == memcheck ]] && extra="--leak-check full"
  timeout "$lim" compute-sanitizer --tool $tool $extra --error-exitcode 86 "$new" sanitize sm90_fn sm90_fnb sm90_fk sm90_pipe sm90_r64f \
    > "$out/$tool.log" 2>&1
  echo "rc=$?" >> "$out/$tool.log"
done

echo "==== GPU: $(cat "$out/gpu.txt")"
echo "==== SASS (bf16 sm90 kernels of the new checker; config <D,rows,...>)"; cat "$out/sass.txt"
echo "==== fuzz failures and row reports"
grep -E "FAIL|rows off|mismatch|error|Error" "$out/fuzz.log" | head -12
echo "==== benchmarks (old = main's checker, new = this branch's)"
printf "%-18s %-4s %-13s %9s %9s %9s  %-25s %s\n" case bin variant "bwd ms" "dkdv ms" "dq ms" "relL2 dq/dk/dv" check
for f in hsta_old hsta_new wan_old wan_new dense_old dense_new; do
  parse "$out/$f.log" | awk -F'|' -v bin="${f#*_}" '{printf "%-18s %-4s %-13s %9s %9s %9s  %-25s %s\n", $1, bin, $2, $3, $4, $5, $6, $7}'
  grep -hE "^rc=[1-9]|skipped|rror" "$out/$f.log" | sed "s/^/  $f: /" | head -3
done
echo "==== fuzz per variant (ok / FAIL lines, worst relL2)   $(grep -E 'ALL OK|SOME CHECKS|skipped|^rc=' "$out/fuzz.log" | tr '\n' ' ')"
for v in sm90_fn sm90_fnb sm90_fk sm90_fkb sm90_pipe sm90_r64f sm90 sm90_r64; do
  printf "%-10s %3s ok %3s FAIL  worst %s\n" "$v" "$(grep -cE " $v +(bf16|f16 ).* ok$" "$out/fuzz.log")" \
    "$(grep -cE " $v +(bf16|f16 ).* FAIL$" "$out/fuzz.log")" \
    "$(grep -E " $v +(bf16|f16 )" "$out/fuzz.log" | grep -oE 'dq [0-9.e+-]+ dk [0-9.e+-]+ dv [0-9.e+-]+' | awk '{m=$2; if($4>m)m=$4; if($6>m)m=$6; print m}' | sort -g | tail -1)"
done
for t in memcheck racecheck; do printf "%-10s %s\n" $t "$(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY|ALL OK|SOME CHECKS|skipped|^rc=' "$out/$t.log" | tr '\n' ' ')"; done
echo "==== done in $((SECONDS - start)) s"
