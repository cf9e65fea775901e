#!/usr/bin/env bash
# Run HERE (the machine with JDK 25 and Maven): packs everything the lent GPU machine needs, which has no Java.
#   .device/tileattn/  tileattn.jar, test-classes/, lib/ (test dependencies other than JUnit),
#                      junit-platform-console-standalone.jar, mask_strategy_hunyuan.json (when ../shared has it)
#   .device/jre.tgz    a jlink'd JDK 25 runtime (made only when missing)
# Then, on the GPU machine (see README, developer section):
#   run(command="bash scripts/device-test.sh", carry=[".device/tileattn", ".device/jre.tgz"])
# Usage: scripts/device-build.sh [BUNDLE_DIR [JRE_TGZ]]   (defaults: .device/tileattn .device/jre.tgz)
# Set MAVEN_ARGS=-o to build offline.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
bundle="${1:-$root/.device/tileattn}"
jre_tgz="${2:-$root/.device/jre.tgz}"
mvn_args=(-q ${MAVEN_ARGS:-})

start=$SECONDS
# package compiles the kernels and the test classes; the tests themselves run on the device.
mvn "${mvn_args[@]}" package -DskipTests

rm -rf "$bundle"
mkdir -p "$bundle/lib"
cp target/tileattn.jar "$bundle/"
cp -r target/test-classes "$bundle/test-classes"
mvn "${mvn_args[@]}" dependency:copy-dependencies -DincludeScope=test -DoutputDirectory="$bundle/lib" \
    -DexcludeGroupIds=org.junit,org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian

# The console launcher must match the JUnit Platform the tests were compiled against.
classpath_file="$(mktemp)"
mvn "${mvn_args[@]}" dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$classpath_file"
platform_version="$(tr ':' '\n' < "$classpath_file" | sed -n 's#.*/junit-platform-engine-\([^/]*\)\.jar$#\1#p' | head -1)"
rm -f "$classpath_file"
if [[ -z "$platform_version" ]]; then
  echo "cannot tell the JUnit Platform version from the test classpath" >&2
  exit 1
fi
mvn "${mvn_args[@]}" dependency:copy \
    -Dartifact="org.junit.platform:junit-platform-console-standalone:$platform_version" \
    -DoutputDirectory="$bundle" -Dmdep.stripVersion=true

# The STA authors' published strategy, for `bench workload` (../shared does not travel to the device).
published="$root/../shared/reference/mask_strategy_hunyuan.json"
if [[ -f "$published" ]]; then
  cp "$published" "$bundle/"
fi

if [[ ! -f "$jre_tgz" ]]; then
  tmp="$(mktemp -d)"
  "$JAVA_HOME/bin/jlink" --add-modules java.base,jdk.incubator.vector,java.logging,jdk.unsupported \
      --strip-debug --no-header-files --no-man-pages --compress=zip-9 --output "$tmp/jre"
  tar czf "$jre_tgz" -C "$tmp" jre
  rm -rf "$tmp"
fi

kernels="$(unzip -l "$bundle/tileattn.jar" 'tileattn/kernels/*.fatbin' 2>/dev/null | awk '/fatbin/ {print $4}' | xargs -n1 basename 2>/dev/null | tr '\n' ' ')"
echo "device bundle: $bundle ($(du -sh "$bundle" | cut -f1)), runtime: $jre_tgz ($(du -sh "$jre_tgz" | cut -f1)), kernels: ${kernels:-none}, $((SECONDS - start)) s"
