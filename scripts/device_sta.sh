#!/bin/bash
# Device-machine driver for the standalone STA kernel check (copied to .device/sta/ with the built binary).
# Phases (any order, several per call): gpu, java (Java GPU tests), check (fuzz), sanitize (memcheck, racecheck),
# bench (BENCH_VARIANTS=... to restrict), ncu (NCU_VARIANT), sass (SASS_DUMP=name fragment), peers.
set -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/out}
mkdir -p "$out"
for phase in "$@"; do
  case $phase in
    java)  # the Java wrapper's GPU tests; bundle from scripts/device-build.sh copied to $here/tileattn
      rm -rf /tmp/jre && mkdir -p /tmp/jre && tar xzf "$here/../jre.tgz" -C /tmp/jre
      cp_="$here/tileattn/test-classes:$here/tileattn/tileattn.jar"; for j in "$here"/tileattn/lib/*.jar; do cp_="$cp_:$j"; done
      TILEATTN_REQUIRE_GPU=1 timeout 240 $JAVA_PREFIX /tmp/jre/jre/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
        -jar "$here/tileattn/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors --details=tree \
        --class-path "$cp_" --select-class tileattn.kernels.TileAttentionKernelGpuTest --select-class tileattn.kernels.KvRangePlanTest \
        > "$out/java${JAVA_LOG:-}.log" 2>&1; echo "java tests rc=$?"; grep -E "tests (successful|failed|found)|✘|=>" "$out/java${JAVA_LOG:-}.log" | head -20 ;;
    gpu) nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit,temperature.gpu --format=csv ;;
    check) "$here/check" check 2>&1 | tee "$out/check.log" | grep -E "FAIL|ALL OK|SOME" ;;
    sanitize)
      compute-sanitizer --tool memcheck --leak-check full "$here/check" sanitize > "$out/memcheck.log" 2>&1; echo "memcheck rc=$?"; tail -3 "$out/memcheck.log"
      compute-sanitizer --tool racecheck "$here/check" sanitize > "$out/racecheck.log" 2>&1; echo "racecheck rc=$?"; tail -3 "$out/racecheck.log" ;;
    bench) "$here/check" bench $BENCH_VARIANTS 2>&1 | tee "$out/bench.log" ;;
    peers) PYTHONUNBUFFERED=1 timeout 420 python3 "$here/peers_sta.py" 2>&1 | tee "$out/peers.log" | grep -vE "^\s*$" ;;
    ncu)
      timeout 300 ncu -k regex:tile_attention_fwd -c 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats "$here/check" profile ${NCU_VARIANT:-wgmma_n64} > "$out/ncu.txt" 2>&1; echo "ncu rc=$?"
      grep -E "Duration|Throughput|Pipe|Issue|Occupancy|Warp Cycles|Stall|Bank|Registers" "$out/ncu.txt" | head -40 ;;
    sass)
      cuobjdump -sass "$here/check" > /tmp/sass.txt
      python3 - <<'PY' | tee "$out/sass_mix.txt"
import re, collections
cur=None; mix=collections.OrderedDict()
for line in open('/tmp/sass.txt'):
    m=re.search(r'Function : (\S+)', line)
    if m: cur=m.group(1); mix[cur]=collections.Counter(); continue
    m=re.search(r'/\*[0-9a-f]{4,5}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', line)
    if cur and m: mix[cur][m.group(1).split('.')[0]]+=1
import os
want=os.environ.get('SASS_DUMP','')
text=open('/tmp/sass.txt').read()
for chunk in text.split('Function : ')[1:]:
    name=chunk.split()[0]
    if want and want in name and 'bfloat' in name:
        open(os.environ.get('OUT','/tmp')+'/sass_dump.txt','w').write(chunk)
for f,c in mix.items():
    if 'tile_attention' not in f: continue
    keys=['HGMMA','WARPGROUP','HMMA','LDSM','LDGSTS','MUFU','FMUL','FFMA','FADD','FMNMX','SHFL','LDL','STL','BAR','F2FP']
    print(f[-60:], ' '.join(f"{k}={c[k]}" for k in keys), 'total', sum(c.values()))
PY
      ;;
  esac
done
