#!/usr/bin/env bash
# Benchmarks "provkit apk verify" against "apksigner verify" and against one SHA-256 pass over the
# file ("openssl dgst -sha256"), in one run, on a ~150 MB APK built with the real tools: aapt (a
# minimal manifest), a random stored asset, zipalign, and apksigner signing with v1, v2, v3 and v4.
#
# It times v1+v2+v3 with the .idsig moved away, then provkit again with the .idsig (v4) beside it.
# Each figure is the best of $RUNS runs (default 3). Prints the ratios; the targets are
# provkit/apksigner <= 0.2 and provkit/sha256 <= 1.5.
#
# Usage: scripts/bench-apk.sh [size-in-MB]        (needs aapt, zipalign, apksigner, openssl, go)
#        KEEP=1 keeps the work directory (the APK, its .idsig, the provkit binary) for profiling.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-150}
runs=${RUNS:-3}
for t in aapt zipalign apksigner openssl go awk time; do
  command -v "$t" >/dev/null || { echo "bench-apk.sh: $t is not installed (scripts/test.sh installs the tools)" >&2; exit 1; }
done
work=$(mktemp -d)
if [[ -n ${KEEP:-} ]]; then echo "bench-apk.sh: keeping $work" >&2; else trap 'rm -rf "$work"' EXIT; fi

go build -o "$work/provkit" ./cmd/provkit

# A framework resource package defining the android: attributes the manifest uses, so that aapt
# needs no android.jar.
mkdir -p "$work/fw/res/values"
cat > "$work/fw/AndroidManifest.xml" <<'XML'
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="android"/>
XML
cat > "$work/fw/res/values/attrs.xml" <<'XML'
<resources>
  <attr name="minSdkVersion" format="integer|string"/>
  <attr name="versionCode" format="integer"/>
  <attr name="versionName" format="string"/>
  <attr name="targetSdkVersion" format="integer|string"/>
  <public type="attr" name="minSdkVersion" id="0x0101020c"/>
  <public type="attr" name="versionCode" id="0x0101021b"/>
  <public type="attr" name="versionName" id="0x0101021c"/>
  <public type="attr" name="targetSdkVersion" id="0x01010270"/>
</resources>
XML
aapt package -f -x -M "$work/fw/AndroidManifest.xml" -S "$work/fw/res" -F "$work/fw.apk"
cat > "$work/AndroidManifest.xml" <<'XML'
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.provkit.bench"
    android:versionCode="1" android:versionName="1.0">
  <uses-sdk android:minSdkVersion="21" android:targetSdkVersion="33"/>
</manifest>
XML
aapt package -f -M "$work/AndroidManifest.xml" -I "$work/fw.apk" -F "$work/unsigned.apk"
mkdir -p "$work/assets"
head -c "$((size_mb * 1024 * 1024))" /dev/urandom > "$work/assets/blob.bin"
(cd "$work" && aapt add -0 "" unsigned.apk assets/blob.bin >/dev/null)
zipalign -f 4 "$work/unsigned.apk" "$work/aligned.apk"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 365 -subj "/CN=bench" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -outform DER -in "$work/key.pem" -out "$work/key.pk8"
apksigner sign --key "$work/key.pk8" --cert "$work/cert.pem" --v4-signing-enabled true --out "$work/app.apk" "$work/aligned.apk"
apk="$work/app.apk"
mv "$apk.idsig" "$work/app.idsig.away"

# best <command...>: runs the command $runs times; prints the best wall time and the best CPU time
# (user+system, all threads) in seconds. CPU time shows the work done even when other processes
# compete for the cores and make wall times noisy.
best() {
  local bw="" bc="" out
  for _ in $(seq "$runs"); do
    out=$(command time -f "%e %U %S" -o "$work/time" "$@" >/dev/null 2>&1 && cat "$work/time") ||
      { echo "bench-apk.sh: failed: $*" >&2; exit 1; }
    read -r bw bc < <(awk -v o="$out" -v bw="$bw" -v bc="$bc" 'BEGIN {
      split(o, f, " "); w = f[1]; c = f[2] + f[3]
      if (bw == "" || w < bw) bw = w; if (bc == "" || c < bc) bc = c
      printf "%.3f %.3f\n", bw, bc }')
  done
  echo "$bw $bc"
}

cat "$apk" > /dev/null # warm the page cache for everyone alike
bytes=$(stat -c %s "$apk")
read -r w_pk c_pk < <(best "$work/provkit" apk verify "$apk")
read -r w_pkj c_pkj < <(best "$work/provkit" apk verify --json "$apk")
read -r w_as c_as < <(best apksigner verify "$apk")
read -r w_sha c_sha < <(best openssl dgst -sha256 "$apk")
mv "$work/app.idsig.away" "$apk.idsig"
read -r w_pk4 c_pk4 < <(best "$work/provkit" apk verify "$apk")
read -r w_as4 c_as4 < <(best apksigner verify --v4-signature-file "$apk.idsig" "$apk")

div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
printf 'APK: %d bytes (%s MB random stored asset, signed v1+v2+v3+v4), %d CPUs, load %s, best of %d runs\n' \
  "$bytes" "$size_mb" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)" "$runs"
printf '  %-44s %8s %8s\n' "" "wall s" "CPU s"
printf '  %-44s %8s %8s\n' "provkit apk verify (v1+v2+v3, .idsig away)" "$w_pk" "$c_pk"
printf '  %-44s %8s %8s\n' "provkit apk verify --json (+ file SHA-256)" "$w_pkj" "$c_pkj"
printf '  %-44s %8s %8s\n' "apksigner verify (v1+v2+v3)" "$w_as" "$c_as"
printf '  %-44s %8s %8s\n' "openssl dgst -sha256" "$w_sha" "$c_sha"
printf '  %-44s %8s %8s\n' "provkit apk verify (v1+v2+v3+v4)" "$w_pk4" "$c_pk4"
printf '  %-44s %8s %8s\n' "apksigner verify (v1+v2+v3+v4)" "$w_as4" "$c_as4"
printf 'wall ratios: provkit/apksigner = %s (target <= 0.2), provkit/sha256 = %s (target <= 1.5)\n' \
  "$(div "$w_pk" "$w_as")" "$(div "$w_pk" "$w_sha")"
printf '             --json: provkit/apksigner = %s, provkit/sha256 = %s\n' "$(div "$w_pkj" "$w_as")" "$(div "$w_pkj" "$w_sha")"
printf '             with v4: provkit/apksigner = %s, provkit/sha256 = %s\n' "$(div "$w_pk4" "$w_as4")" "$(div "$w_pk4" "$w_sha")"
printf 'CPU ratios:  provkit/apksigner = %s, provkit/sha256 = %s (2 hash passes: v2/v3 chunks and v1 entries)\n' \
  "$(div "$c_pk" "$c_as")" "$(div "$c_pk" "$c_sha")"
