#!/usr/bin/env bash
# Run THERE (the lent GPU machine, from the repository root): tileattn's GPU tests, then the same tests under
# compute-sanitizer memcheck with full leak checking, then `tileattn info`. Needs the bundle and runtime that
# scripts/device-build.sh makes here:
#   run(command="bash scripts/device-test.sh", carry=[".device/tileattn", ".device/jre.tgz"])
# Tests tagged "cuda-error" provoke CUDA errors on purpose (out of memory, a corrupt module, a bad launch); the
# sanitizer would count those as API errors, so they get a memcheck pass of their own with API-error reports off
# (memory errors and leaks still count). Logs go to $OUT (or /tmp/tileattn-device-out); the last lines printed
# are the summary. Exit status: 0 only when every stage passed.
# MEMCHECK=0 skips the two sanitizer passes (a quick check of the GPU tests alone); MEMCHECK_CLASSES="a.B c.D"
# limits them to those test classes, TEST_CLASSES the plain pass.
# Usage: scripts/device-test.sh [BUNDLE_DIR [JRE_TGZ]]   (defaults: .device/tileattn .device/jre.tgz)
set -uo pipefail

bundle="${1:-.device/tileattn}"
jre_tgz="${2:-.device/jre.tgz}"
out="${OUT:-/tmp/tileattn-device-out}"
mkdir -p "$out"
start=$SECONDS

runtime=/tmp/tileattn-jre
rm -rf "$runtime" && mkdir -p "$runtime" && tar xzf "$jre_tgz" -C "$runtime" || { echo "cannot unpack $jre_tgz" >&2; exit 2; }
java="$runtime/jre/bin/java"
sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"

classpath="$bundle/test-classes:$bundle/tileattn.jar"
for jar in "$bundle"/lib/*.jar; do
  [[ -e "$jar" ]] && classpath="$classpath:$jar"
done
export TILEATTN_REQUIRE_GPU=1

# $1: log name, $2: JUnit tag expression, rest: command prefix (empty, or the sanitizer and its options)
run_tests() {
  local log="$out/$1" tags="$2"
  shift 2
  local t0=$SECONDS
  local selectors=(--scan-class-path "$bundle/test-classes")
  local classes="${TEST_CLASSES:-}"
  (( $# > 0 )) && classes="${MEMCHECK_CLASSES:-}"
  if [[ -n "$classes" ]]; then
    selectors=()
    for c in $classes; do selectors+=(--select-class "$c"); done
  fi
  "$@" "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx8g \
      -jar "$bundle/junit-platform-console-standalone.jar" execute --disable-banner --disable-ansi-colors \
      --details=tree --class-path "$classpath" "${selectors[@]}" --include-tag "$tags" \
      > "$log" 2>&1
  local rc=$?
  echo "$((SECONDS - t0))" > "$log.seconds"
  return $rc
}

# "26 found, 26 successful, 0 failed, 0 skipped, 0 aborted, 0 classes failed" from the launcher's summary box
counts() {
  local log="$out/$1" line="" n
  for what in "tests found" "tests successful" "tests failed" "tests skipped" "tests aborted" "containers failed"; do
    n="$(grep -E "^\[ *[0-9]+ $what" "$log" | grep -oE '[0-9]+' | head -1)"
    line="$line${n:-?} ${what#tests }, "
  done
  echo "${line%, }"
}

sanitizer_summary() {
  local log="$out/$1"
  local errors leaks
  errors="$(grep -E '^========= ERROR SUMMARY' "$log" | tail -1 | sed 's/^========= //')"
  leaks="$(grep -E '^========= LEAK SUMMARY' "$log" | tail -1 | sed 's/^========= //')"
  echo "${errors:-no ERROR SUMMARY line}${leaks:+; $leaks}"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1

run_tests gpu-tests.log "gpu"
rc_plain=$?

rc_memcheck=skipped rc_memcheck_errors=skipped
if [[ "${MEMCHECK:-1}" != 0 ]]; then
  memcheck=("$sanitizer" --tool memcheck --leak-check full --error-exitcode 86)
  run_tests memcheck.log "gpu & !cuda-error" "${memcheck[@]}"
  rc_memcheck=$?
  run_tests memcheck-cuda-error.log "gpu & cuda-error" "${memcheck[@]}" --report-api-errors no
  rc_memcheck_errors=$?
  # MEMCHECK_CLASSES without a cuda-error test leaves that pass empty (the sanitizer then exits 255): not a failure.
  if [[ -n "${MEMCHECK_CLASSES:-}" ]] && grep -qE '^\[ *0 tests found' "$out/memcheck-cuda-error.log"; then
    rc_memcheck_errors=0
  fi
fi

"$java" -jar "$bundle/tileattn.jar" info > "$out/info.log" 2>&1
rc_info=$?

echo "---- tileattn device run on $(cat "$out/gpu.txt")"
echo "---- info (exit $rc_info)"
cat "$out/info.log"
for log in gpu-tests.log memcheck.log memcheck-cuda-error.log; do
  [[ -f "$out/$log" ]] || continue
  if grep -qE '✘' "$out/$log"; then
    echo "---- failures in $log:"
    grep -E '✘|=> ' "$out/$log" | head -40
  fi
done
echo "---- summary"
printf '%-34s %-75s %s\n' "stage" "tests" "seconds, exit"
printf '%-34s %-75s %s\n' "gpu tests" "$(counts gpu-tests.log)" "$(cat "$out/gpu-tests.log.seconds") s, $rc_plain"
if [[ "${MEMCHECK:-1}" != 0 ]]; then
  printf '%-34s %-75s %s\n' "memcheck (gpu & !cuda-error)" "$(counts memcheck.log)" "$(cat "$out/memcheck.log.seconds") s, $rc_memcheck"
  printf '%-34s %-75s %s\n' "memcheck (cuda-error, no API rpt)" "$(counts memcheck-cuda-error.log)" "$(cat "$out/memcheck-cuda-error.log.seconds") s, $rc_memcheck_errors"
  echo "sanitizer: $(sanitizer_summary memcheck.log) | cuda-error pass: $(sanitizer_summary memcheck-cuda-error.log)"
else
  echo "memcheck skipped (MEMCHECK=0)"
fi
echo "device test run: $((SECONDS - start)) s in all"
(( rc_plain == 0 && rc_info == 0 )) && [[ "${MEMCHECK:-1}" == 0 || ( $rc_memcheck == 0 && $rc_memcheck_errors == 0 ) ]]
