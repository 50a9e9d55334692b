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
for t in aapt zipalign apksigner openssl go awk; do
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

# best <command...>: runs the command $runs times, prints the best wall time in seconds.
best() {
  local b="" s e t
  for _ in $(seq "$runs"); do
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "bench-apk.sh: failed: $*" >&2; exit 1; }
    e=$(date +%s.%N)
    b=$(awk -v s="$s" -v e="$e" -v b="$b" 'BEGIN { t = e - s; if (b == "" || t < b) b = t; printf "%.4f", b }')
  done
  echo "$b"
}

cat "$apk" > /dev/null # warm the page cache for everyone alike
bytes=$(stat -c %s "$apk")
t_provkit=$(best "$work/provkit" apk verify "$apk")
t_provkit_json=$(best "$work/provkit" apk verify --json "$apk")
t_apksigner=$(best apksigner verify "$apk")
t_sha=$(best openssl dgst -sha256 "$apk")
mv "$work/app.idsig.away" "$apk.idsig"
t_provkit_v4=$(best "$work/provkit" apk verify "$apk")
t_apksigner_v4=$(best apksigner verify --v4-signature-file "$apk.idsig" "$apk")

printf 'APK: %d bytes (v1+v2+v3 signed, %s MB random stored asset), %d CPUs, best of %d runs\n' "$bytes" "$size_mb" "$(nproc)" "$runs"
printf '  provkit apk verify (v1+v2+v3):      %6.3f s\n' "$t_provkit"
printf '  provkit apk verify --json (+ file SHA-256): %6.3f s\n' "$t_provkit_json"
printf '  apksigner verify (v1+v2+v3):        %6.3f s\n' "$t_apksigner"
printf '  openssl dgst -sha256:               %6.3f s\n' "$t_sha"
printf '  provkit apk verify (v1+v2+v3+v4):   %6.3f s\n' "$t_provkit_v4"
printf '  apksigner verify (v1+v2+v3+v4):     %6.3f s\n' "$t_apksigner_v4"
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
printf 'ratios: provkit/apksigner = %s (target <= 0.2), provkit/sha256 = %s (target <= 1.5)\n' \
  "$(div "$t_provkit" "$t_apksigner")" "$(div "$t_provkit" "$t_sha")"
printf '        --json: provkit/apksigner = %s, provkit/sha256 = %s\n' \
  "$(div "$t_provkit_json" "$t_apksigner")" "$(div "$t_provkit_json" "$t_sha")"
printf '        with v4: provkit/apksigner = %s, provkit/sha256 = %s\n' \
  "$(div "$t_provkit_v4" "$t_apksigner_v4")" "$(div "$t_provkit_v4" "$t_sha")"
