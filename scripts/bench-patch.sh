#!/usr/bin/env bash
# Times `provkit patch --check` on a generated AOSP-shaped tree against the reference tools doing
# the parsing part of the same job: bpfmt reading every Android.bp and GNU make evaluating the
# product makefile. provkit does more (it also scans Android.mk and permission XMLs, evaluates the
# chain twice and verifies the APK), so a ratio near or below 1 means its scanning costs no more
# than the reference parsers'.
#
# Usage: scripts/bench-patch.sh [number-of-module-directories]   (default 2000)
# Needs: go, aapt, zipalign, apksigner, openssl, bpfmt, make.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/provkit" ./cmd/provkit
tree=$work/tree
mkdir -p "$tree/device/acme/foo"
cat >"$tree/device/acme/foo/AndroidProducts.mk" <<'EOF'
PRODUCT_MAKEFILES := $(LOCAL_DIR)/acme_foo.mk
EOF
{
  echo 'PRODUCT_NAME := acme_foo'
  echo 'PRODUCT_PACKAGES += \'
} >"$tree/device/acme/foo/acme_foo.mk"
for ((i = 0; i < n; i++)); do
  d=$tree/vendor/gen/m$i
  mkdir -p "$d"
  cat >"$d/Android.bp" <<EOF
// generated module directory $i
android_app_import {
    name: "App$i",
    apk: "App$i.apk",
    presigned: true,
    dex_preopt: {
        enabled: false,
    },
    product_specific: true,
    required: ["etc$i"],
}

prebuilt_etc {
    name: "etc$i",
    src: "etc$i.xml",
    sub_dir: "permissions",
    product_specific: true,
}
EOF
  if ((i % 10 == 0)); then
    printf 'LOCAL_PATH := $(call my-dir)\ninclude $(CLEAR_VARS)\nLOCAL_MODULE := Mk%d\nLOCAL_MODULE_CLASS := APPS\nLOCAL_SRC_FILES := Mk%d.apk\ninclude $(BUILD_PREBUILT)\n' "$i" "$i" >"$d/Android.mk"
  fi
  echo "    App$i \\" >>"$tree/device/acme/foo/acme_foo.mk"
done
echo '    Last' >>"$tree/device/acme/foo/acme_foo.mk"

# A real signed APK.
a=$work/apk
mkdir -p "$a/fw/res/values" "$a/app"
echo '<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="android"/>' >"$a/fw/AndroidManifest.xml"
cat >"$a/fw/res/values/attrs.xml" <<'EOF'
<resources>
  <attr name="versionCode" format="integer"/>
  <public type="attr" name="versionCode" id="0x0101021b"/>
</resources>
EOF
echo '<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="ru.oneme.app" android:versionCode="42"/>' >"$a/app/AndroidManifest.xml"
aapt package -f -x -M "$a/fw/AndroidManifest.xml" -S "$a/fw/res" -F "$a/fw.apk"
aapt package -f -M "$a/app/AndroidManifest.xml" -I "$a/fw.apk" -F "$a/u.apk"
zipalign -f 4 "$a/u.apk" "$a/al.apk"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$a/key.pem" -out "$a/cert.pem" -days 2 -subj "/CN=bench" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$a/key.pem" -outform DER -out "$a/key.pk8"
apksigner sign --key "$a/key.pk8" --cert "$a/cert.pem" --out "$work/messenger.apk" "$a/al.apk"
digest=$(openssl x509 -in "$a/cert.pem" -outform DER | sha256sum | cut -d' ' -f1)
cat >"$work/policy.yaml" <<EOF
apiVersion: provkit.dev/v1
kind: PreinstallPolicy
metadata: {name: bench}
apps:
  - package: ru.oneme.app
    apk: messenger.apk
    signers: [{sha256: "$digest"}]
EOF

now() { date +%s.%N; }
t0=$(now)
set +e
"$work/provkit" patch --policy "$work/policy.yaml" --tree "$tree" --check >"$work/out" 2>&1
code=$?
set -e
t1=$(now)
if ((code != 4)); then
  echo "bench-patch: provkit patch --check exited $code (want 4: not yet compliant):" >&2
  cat "$work/out" >&2
  exit 1
fi
cat >"$work/harness.mk" <<'EOF'
inherit-product = $(eval include $(1))
include $(PRODUCT_MK)
$(info $(words $(PRODUCT_PACKAGES)) packages)
all: ; @:
EOF
t2=$(now)
find "$tree" -name Android.bp -print0 | xargs -0 bpfmt -l >/dev/null
make -s -C "$tree" -f "$work/harness.mk" PRODUCT_MK=device/acme/foo/acme_foo.mk >/dev/null
t3=$(now)
awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v n="$n" 'BEGIN {
  p = t1 - t0; r = t3 - t2
  printf "tree: %d module directories (%d Android.bp, %d Android.mk)\n", n, n, int((n + 9) / 10)
  printf "provkit patch --check:        %.3f s\n", p
  printf "bpfmt -l (all) + GNU make:    %.3f s\n", r
  printf "ratio provkit / reference:    %.2f\n", p / r
}'
