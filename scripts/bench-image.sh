#!/usr/bin/env bash
# Compares `provkit image audit` with what a lab does today to check one app in a system image:
#
#   baseline: simg2img system.img raw.img            (expand the sparse image)
#             debugfs -R "dump <apk> out.apk" raw.img (take the APK out)
#             apksigner verify --print-certs out.apk  (verify it, read the signer)
#   provkit:  provkit image audit --policy policy.yaml system.img
#             (reads the sparse chunk index, the ext4 metadata on the way, every APK's manifest,
#             the permission XMLs and build.prop, and the mandated APK: only the blocks it needs)
#
# The image: a ~2 GiB ext4 system image (system-as-root) made by mke2fs -d, holding the app (a
# signed APK with a 32 MiB asset) among ~3000 other files (sizes log-uniform from 1 KiB to 1 MiB,
# as libraries and resources of a system partition, ~400 MiB in all) and ~100 other APKs built by
# aapt, made sparse with DONT_CARE for its empty blocks so that building it stays fast. With
# [max-file-KiB] small (e.g. 8), the image holds little data and simg2img has almost nothing to
# write: then the baseline is mostly apksigner's start-up.
#
# Usage: scripts/bench-image.sh [image-MiB] [apk-MiB] [files] [apks] [max-file-KiB]
#        (defaults 2048 32 3000 100 1024)
# Prints the best of 3 runs of each, the ratio provkit/baseline (lower is better) and the peak
# resident memory of each (GNU time).
set -euo pipefail
cd "$(dirname "$0")/.."
img_mib=${1:-2048}
apk_mib=${2:-32}
files=${3:-3000}
apks=${4:-100}
max_kib=${5:-1024}
for tool in mke2fs debugfs simg2img aapt apksigner openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench-image: $tool is missing (see .ci/run for the packages)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src
apk=system/priv-app/Max/Max.apk
go build -o "$work/provkit" ./cmd/provkit

echo "bench-image: building a stand-in framework-res.apk and $apks APKs with aapt" >&2
fw=$work/fw
mkdir -p "$fw/res/values"
cat >"$fw/res/values/attrs.xml" <<'EOF'
<resources>
  <attr name="name" format="string"/><public type="attr" name="name" id="0x01010003"/>
  <attr name="protectionLevel"><flag name="normal" value="0"/><flag name="dangerous" value="1"/>
    <flag name="signature" value="2"/><flag name="privileged" value="0x10"/></attr>
  <public type="attr" name="protectionLevel" id="0x01010009"/>
  <attr name="minSdkVersion" format="integer|string"/><public type="attr" name="minSdkVersion" id="0x0101020c"/>
  <attr name="versionCode" format="integer"/><public type="attr" name="versionCode" id="0x0101021b"/>
  <attr name="versionName" format="string"/><public type="attr" name="versionName" id="0x0101021c"/>
  <attr name="targetSdkVersion" format="integer|string"/><public type="attr" name="targetSdkVersion" id="0x01010270"/>
</resources>
EOF
cat >"$fw/AndroidManifest.xml" <<'EOF'
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="android">
  <permission android:name="android.permission.INSTALL_PACKAGES" android:protectionLevel="signature|privileged"/>
  <permission android:name="android.permission.POST_NOTIFICATIONS" android:protectionLevel="dangerous"/>
</manifest>
EOF
aapt package -f -x -M "$fw/AndroidManifest.xml" -S "$fw/res" -F "$fw/framework-res.apk"
mkdir -p "$src/system/framework" "$src/system/etc/permissions" "$src/system/etc/default-permissions"
cp "$fw/framework-res.apk" "$src/system/framework/"

app() { # app <package> <versionCode> <out.apk> [asset-dir]
  local d=$work/apk-$1
  mkdir -p "$d"
  cat >"$d/AndroidManifest.xml" <<EOF
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="$1" android:versionCode="$2" android:versionName="$2">
  <uses-sdk android:minSdkVersion="28" android:targetSdkVersion="34"/>
  <uses-permission android:name="android.permission.POST_NOTIFICATIONS"/>
  <uses-permission android:name="android.permission.INSTALL_PACKAGES"/>
  <application/>
</manifest>
EOF
  local extra=()
  [[ -n ${4:-} ]] && extra=(-A "$4" -0 bin)
  aapt package -f -M "$d/AndroidManifest.xml" -I "$fw/framework-res.apk" "${extra[@]}" -F "$3"
}
for i in $(seq 1 "$apks"); do
  n=$(printf 'App%03d' "$i")
  mkdir -p "$src/system/app/$n"
  app "com.example.app$i" 1 "$src/system/app/$n/$n.apk"
done

echo "bench-image: building and signing the mandated app (${apk_mib} MiB asset)" >&2
mkdir -p "$work/assets" "$(dirname "$src/$apk")"
head -c $((apk_mib << 20)) /dev/urandom >"$work/assets/padding.bin"
app ru.oneme.app 12 "$work/unsigned.apk" "$work/assets"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 3650 -subj "/CN=Max release" 2>/dev/null
openssl pkcs8 -topk8 -outform DER -nocrypt -in "$work/key.pem" -out "$work/key.pk8"
apksigner sign --key "$work/key.pk8" --cert "$work/cert.pem" --out "$src/$apk" "$work/unsigned.apk"
pin=$(openssl x509 -in "$work/cert.pem" -outform DER | sha256sum | cut -d' ' -f1)

cat >"$src/system/build.prop" <<'EOF'
ro.build.fingerprint=acme/phone/phone:14/AP1A.240505.004/7:user/release-keys
ro.control_privapp_permissions=enforce
EOF
cat >"$src/system/etc/permissions/privapp-permissions-max.xml" <<'EOF'
<permissions><privapp-permissions package="ru.oneme.app"><permission name="android.permission.INSTALL_PACKAGES"/></privapp-permissions></permissions>
EOF
cat >"$src/system/etc/default-permissions/max.xml" <<'EOF'
<exceptions><exception package="ru.oneme.app"><permission name="android.permission.POST_NOTIFICATIONS" fixed="false"/></exception></exceptions>
EOF
cat >"$work/policy.yaml" <<EOF
apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: bench}
apps:
  - package: ru.oneme.app
    signers: [{sha256: "$pin"}]
    minVersionCode: 10
    partition: system
    privileged: true
    grantPermissions: [android.permission.POST_NOTIFICATIONS]
    privappPermissions: [android.permission.INSTALL_PACKAGES]
devices:
  fingerprints: ["acme/phone/phone:14/AP1A.240505.004/7:user/release-keys"]
EOF

echo "bench-image: writing $files other files (1 KiB to $max_kib KiB)" >&2
python3 - "$src" "$files" "$max_kib" <<'EOF'
import math, os, random, sys
src, files, max_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(1)
for i in range(files):
    d = os.path.join(src, "system", "lib64", "d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    n = int(math.exp(r.uniform(math.log(1024), math.log(max(max_kib, 2) * 1024))))
    open(os.path.join(d, "lib%04d.so" % i), "wb").write(r.randbytes(n))
EOF

echo "bench-image: mke2fs -d into a ${img_mib} MiB image, then a sparse image (DONT_CARE for empty blocks)" >&2
mke2fs -q -F -t ext4 -b 4096 -E root_owner=0:0 -d "$src" "$work/system.raw" "${img_mib}M"
"$work/provkit" image sparse --dont-care-zeros "$work/system.raw" "$work/system.img" >/dev/null
rm -f "$work/system.raw"
echo "bench-image: sparse image $(du -h --apparent-size "$work/system.img" | cut -f1) describing ${img_mib} MiB" >&2

now() { date +%s.%N; }
best() { python3 -c "import sys; print(min(float(x) for x in sys.argv[1:]))" "$@"; }
peak() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

base_times=() pk_times=()
for run in 1 2 3; do
  rm -f "$work/raw.img" "$work/out.apk"
  t0=$(now)
  /usr/bin/time -v -o "$work/time.simg2img" simg2img "$work/system.img" "$work/raw.img"
  /usr/bin/time -v -o "$work/time.debugfs" debugfs -R "dump /$apk $work/out.apk" "$work/raw.img" 2>/dev/null
  /usr/bin/time -v -o "$work/time.apksigner" apksigner verify --print-certs "$work/out.apk" >"$work/apksigner.out"
  t1=$(now)
  grep -q "$pin" "$work/apksigner.out" || { echo "bench-image: apksigner did not report the signer" >&2; exit 1; }
  base_times+=("$(python3 -c "print($t1 - $t0)")")

  t0=$(now)
  /usr/bin/time -v -o "$work/time.provkit" "$work/provkit" image audit --policy "$work/policy.yaml" "$work/system.img" >"$work/audit.out"
  t1=$(now)
  grep -q '^Verdict: *COMPLIANT$' "$work/audit.out" || { cat "$work/audit.out" >&2; echo "bench-image: provkit did not find the image compliant" >&2; exit 1; }
  pk_times+=("$(python3 -c "print($t1 - $t0)")")
done
rm -f "$work/raw.img"

b=$(best "${base_times[@]}")
p=$(best "${pk_times[@]}")
python3 - "$b" "$p" "$(peak "$work/time.simg2img")" "$(peak "$work/time.debugfs")" "$(peak "$work/time.apksigner")" "$(peak "$work/time.provkit")" <<'EOF'
import sys
b, p = float(sys.argv[1]), float(sys.argv[2])
s, d, a, k = (int(x) for x in sys.argv[3:7])
print(f"baseline (simg2img + debugfs dump + apksigner verify): {b:.3f} s  peak RSS simg2img {s/1024:.0f} MiB, debugfs {d/1024:.0f} MiB, apksigner {a/1024:.0f} MiB")
print(f"provkit  (image audit, every rule):                    {p:.3f} s  peak RSS {k/1024:.0f} MiB")
print(f"ratio provkit/baseline: {p / b:.3f}")
EOF
