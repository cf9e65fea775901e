#!/bin/bash
# Device-machine driver for the attention backward (copied to .device/bwd/ with the checker binary, the peer
# scripts and the Java bundle of scripts/device-build.sh in .device/bwd/tileattn). Phases, in the order given:
#   gpu       the card's name and clocks
#   check     shape fuzz of tile_attention_bwd_check (variant "separate", the shipped configuration) against float64 gradients
#   sanitize  compute-sanitizer memcheck (leak check) and racecheck on three small cases
#   bench     benchmark shapes, every variant (bwd, dkdv alone, dq alone, forward), sampled rows checked
#   java      TileAttentionBackwardKernelGpuTest through the JUnit console; jmemcheck: the same under memcheck
#   peers     scripts/peers_bwd.py (SDPA cuDNN / flash, FlexAttention on the same STA mask)
#   sass      instruction mix of the backward kernels (spills show as LDL/STL)
# Each phase has a time limit; logs go to $OUT.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/out}
mkdir -p "$out"
java_tests() {  # $1: time limit in seconds, then an optional sanitizer prefix
  local limit=$1
  shift
  local rt=/tmp/bwd-jre
  [[ -x $rt/jre/bin/java ]] || { mkdir -p $rt && tar xzf "$here/../jre.tgz" -C $rt; }
  local cp="$here/tileattn/test-classes:$here/tileattn/tileattn.jar"
  for j in "$here"/tileattn/lib/*.jar; do cp="$cp:$j"; done
  TILEATTN_REQUIRE_GPU=1 timeout "$limit" "$@" $rt/jre/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g \
    -jar "$here/tileattn/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors \
    --details=tree --class-path "$cp" --select-class tileattn.kernels.TileAttentionBackwardKernelGpuTest
}
for phase in "$@"; do
  t0=$SECONDS
  case $phase in
    gpu) nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv,noheader ;;
    check) timeout 150 "$here/check" check separate > "$out/check.log" 2>&1; echo "check rc=$?"
           grep -E "FAIL|ALL OK|SOME" "$out/check.log"; grep -oE "relL2 dq [0-9.e+-]+ dk [0-9.e+-]+ dv [0-9.e+-]+" "$out/check.log" | sort -k3 -g | tail -1 ;;
    sanitize)
      timeout 120 compute-sanitizer --tool memcheck --leak-check full "$here/check" sanitize separate > "$out/memcheck.log" 2>&1; echo "memcheck rc=$?"; tail -2 "$out/memcheck.log"
      timeout 120 compute-sanitizer --tool racecheck "$here/check" sanitize separate > "$out/racecheck.log" 2>&1; echo "racecheck rc=$?"; tail -2 "$out/racecheck.log" ;;
    bench) timeout 240 "$here/check" bench $BENCH_VARIANTS 2>&1 | tee "$out/bench.log" ;;
    java) java_tests 150 > "$out/java.log" 2>&1; echo "java rc=$?"; grep -E "tests (successful|failed)|backward .*relative|✘" "$out/java.log" | head -30 ;;
    jmemcheck) java_tests 200 compute-sanitizer --tool memcheck --error-exitcode 86 > "$out/java-memcheck.log" 2>&1; echo "java memcheck rc=$?"
               grep -E "tests (successful|failed)|ERROR SUMMARY" "$out/java-memcheck.log" ;;
    peers) PYTHONUNBUFFERED=1 timeout 300 python3 "$here/peers_bwd.py" > "$out/peers.log" 2>&1; echo "peers rc=$?"; sed -n '/^case /,$p' "$out/peers.log"; grep -iE "error|Traceback" "$out/peers.log" | head -5 ;;
    sass)
      cuobjdump -sass "$here/check" > /tmp/sass.txt 2>&1
      python3 - <<'PY' | tee "$out/sass_mix.txt"
import re, collections
cur=None; mix=collections.OrderedDict()
for line in open('/tmp/sass.txt'):
    m=re.search(r'Function : (\S+)', line)
    if m: cur=m.group(1); mix[cur]=collections.Counter(); continue
    m=re.search(r'/\*[0-9a-f]{4,5}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', line)
    if cur and m: mix[cur][m.group(1).split('.')[0]]+=1
for f,c in mix.items():
    if 'bwd' not in f or 'bfloat' not in f: continue
    keys=['HMMA','LDSM','LDGSTS','MUFU','FFMA','FMUL','LDL','STL','BAR','RED','ATOM']
    print(f[-70:], ' '.join(f"{k}={c[k]}" for k in keys))
PY
      ;;
  esac
  echo "---- phase $phase: $((SECONDS - t0)) s"
done
