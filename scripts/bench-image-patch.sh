#!/usr/bin/env bash
# Put one app (APK + 2 permission XMLs) into a product image of SIZE_MB MiB holding FILES files
# (EROFS lz4hc, hashtree footer, vbmeta signed), two ways, once each:
#   manual:  fsck.erofs --extract, copy the files, mkfs.erofs -zlz4hc --file-contexts,
#            avbtool add_hashtree_footer + make_vbmeta_image (what people do by hand today)
#   provkit: provkit image patch
# Prints the wall time and peak RSS of each, the ratio provkit/manual (lower is better), and the
# file system size of the input and of each output. provkit copies compressed EROFS files as they
# are (no recompression), so its output is about the input's size; COMPRESSIBLE=N makes N% of the
# files compressible text, the rest random bytes (default 0: random only, as an APK).
# FS=ext4 measures an ext4 product image instead (mke2fs -d, no journal, metadata_csum, labels
# set with debugfs ea_set); its manual route is avbtool erase_footer, debugfs -w (mkdir, write,
# ea_set, in place), avbtool add_hashtree_footer + make_vbmeta_image.
#
# Usage: scripts/bench-image-patch.sh      (SIZE_MB=2048 FILES=3000 FS=erofs COMPRESSIBLE=0; needs
#        mkfs.erofs, fsck.erofs (or mke2fs, debugfs), python3, openssl and
#        ../shared/reference-tools/avbtool.py; ~5x SIZE_MB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${SIZE_MB:-2048}"
files="${FILES:-3000}"
fstype="${FS:-erofs}"
compressible="${COMPRESSIBLE:-0}"
ref="$(cd .. && pwd)/shared/reference-tools"
avbtool="python3 $ref/avbtool.py"
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-image-patch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
go build -o "$work/provkit" ./cmd/provkit

# the product tree: FILES files adding up to SIZE_MB MiB (random bytes: compress as an APK does;
# COMPRESSIBLE% of them random text of 8 characters, which lz4hc shrinks to about half)
src="$work/src"
mkdir -p "$src/etc/selinux" "$src/app" "$src/etc/permissions"
cat >"$src/etc/selinux/product_file_contexts" <<'FC'
/product(/.*)?                    u:object_r:system_file:s0
/product/app(/.*)?                u:object_r:system_app_file:s0
FC
per=$(( size_mb * 1024 / files ))   # KiB per file
textmap=$(printf 'etaoin \n%.0s' $(seq 32))   # 256 bytes onto 8 characters: text lz4hc shrinks
for i in $(seq 1 "$files"); do
  d="$src/app/A$((i % 300))"
  mkdir -p "$d"
  if [ $(( i % 100 )) -lt "$compressible" ]; then
    head -c "$((per * 1024))" /dev/urandom | tr '\000-\377' "$textmap" >"$d/f$i.txt"
  else
    head -c "$((per * 1024))" /dev/urandom >"$d/f$i.bin"
  fi
done
sed -e 's#/product(/\.\*)?#(/.*)?#' -e 's#/product/#/#' "$src/etc/selinux/product_file_contexts" >"$work/fc"
fw="$work/fw"; mkdir -p "$fw"
if [ "$fstype" = ext4 ]; then
  mke2fs -q -F -t ext4 -b 4096 -I 256 -m 0 -O ^has_journal,metadata_csum -E root_owner=0:0 -d "$src" \
    "$fw/product.img" "$(( size_mb * 11 / 10 + 16 ))M"
  printf 'u:object_r:system_file:s0\0' >"$work/l.sys"
  printf 'u:object_r:system_app_file:s0\0' >"$work/l.app"
  (cd "$src" && find . | while read -r p; do
    n="${p#.}"; l="$work/l.sys"
    case "$n" in /app*) l="$work/l.app";; esac
    echo "ea_set -f $l ${n:-/} security.selinux"
  done) >"$work/label.cmds"
  debugfs -w -f "$work/label.cmds" "$fw/product.img" >/dev/null 2>&1
else
  mkfs.erofs --quiet -zlz4hc --file-contexts="$work/fc" -T1230768000 "$fw/product.img" "$src"
fi
img_size=$(stat -c %s "$fw/product.img")
part=$(( (img_size * 11 / 10 / 4096 + 1024) * 4096 ))
$avbtool add_hashtree_footer --do_not_generate_fec --image "$fw/product.img" --partition_name product \
  --partition_size "$part" --hash_algorithm sha256 >/dev/null
$avbtool make_vbmeta_image --output "$fw/vbmeta.img" --key "$ref/testkey_rsa4096.pem" --algorithm SHA256_RSA4096 \
  --include_descriptors_from_image "$fw/product.img" --padding_size 4096 >/dev/null

# the app and its policy: provkit demo's signed sample APK and the policy pinning its key
"$work/provkit" demo --keep "$work/demo" >/dev/null 2>&1 || true
test -f "$work/demo/policy.yaml" || { echo "bench-image-patch: provkit demo --keep wrote no policy" >&2; exit 1; }

measure() { # name, command...: prints "name seconds rss_kib"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.$name" "$@" >/dev/null
  read -r secs rss <"$work/time.$name"
  echo "$name $secs $rss"
}

manual() {
  set -e
  local x="$work/manual"
  rm -rf "$x"; mkdir -p "$x/out"
  fsck.erofs --extract="$x/tree" "$fw/product.img" >/dev/null
  mkdir -p "$x/tree/app/RuOnemeApp" "$x/tree/etc/sysconfig"
  cp "$work/demo/messenger.apk" "$x/tree/app/RuOnemeApp/RuOnemeApp.apk"
  mkdir -p "$x/tree/etc/default-permissions"
  echo '<config/>' >"$x/tree/etc/sysconfig/preinstalled-packages-ru.oneme.app.xml"
  echo '<exceptions/>' >"$x/tree/etc/default-permissions/default-permissions-ru.oneme.app.xml"
  mkfs.erofs --quiet -zlz4hc --file-contexts="$work/fc" -T1230768000 "$x/out/product.img" "$x/tree"
  $avbtool add_hashtree_footer --do_not_generate_fec --image "$x/out/product.img" --partition_name product \
    --partition_size "$part" --hash_algorithm sha256
  $avbtool make_vbmeta_image --output "$x/out/vbmeta.img" --key "$ref/testkey_rsa2048.pem" --algorithm SHA256_RSA2048 \
    --include_descriptors_from_image "$x/out/product.img" --padding_size 4096
  rm -rf "$x/tree"
}
manual_ext4() {
  set -e
  local x="$work/manual"
  rm -rf "$x"; mkdir -p "$x/out"
  cp "$fw/product.img" "$x/out/product.img"
  $avbtool erase_footer --image "$x/out/product.img"
  echo '<config/>' >"$x/sysconfig.xml"
  echo '<exceptions/>' >"$x/defperm.xml"
  cat >"$x/cmds" <<CMDS
mkdir /app/RuOnemeApp
write $work/demo/messenger.apk /app/RuOnemeApp/RuOnemeApp.apk
mkdir /etc/sysconfig
write $x/sysconfig.xml /etc/sysconfig/preinstalled-packages-ru.oneme.app.xml
mkdir /etc/default-permissions
write $x/defperm.xml /etc/default-permissions/default-permissions-ru.oneme.app.xml
ea_set -f $work/l.app /app/RuOnemeApp security.selinux
ea_set -f $work/l.app /app/RuOnemeApp/RuOnemeApp.apk security.selinux
ea_set -f $work/l.sys /etc/sysconfig security.selinux
ea_set -f $work/l.sys /etc/sysconfig/preinstalled-packages-ru.oneme.app.xml security.selinux
ea_set -f $work/l.sys /etc/default-permissions security.selinux
ea_set -f $work/l.sys /etc/default-permissions/default-permissions-ru.oneme.app.xml security.selinux
CMDS
  debugfs -w -f "$x/cmds" "$x/out/product.img"
  $avbtool add_hashtree_footer --do_not_generate_fec --image "$x/out/product.img" --partition_name product \
    --partition_size "$part" --hash_algorithm sha256
  $avbtool make_vbmeta_image --output "$x/out/vbmeta.img" --key "$ref/testkey_rsa2048.pem" --algorithm SHA256_RSA2048 \
    --include_descriptors_from_image "$x/out/product.img" --padding_size 4096
}
export -f manual manual_ext4; export work fw part ref avbtool

echo "product image: $((img_size / 1048576)) MiB $fstype, $files files; partition $((part / 1048576)) MiB" >&2
if [ "$fstype" = ext4 ]; then
  m=$(measure manual bash -c manual_ext4)
  e2fsck -fn "$work/manual/out/product.img" >/dev/null
else
  m=$(measure manual bash -c manual)
fi
fs_size() { $avbtool info_image --image "$1" | awk '/Original image size/ {print $4}'; }
manual_fs=$(fs_size "$work/manual/out/product.img")
rm -rf "$work/manual"
p=$(measure provkit "$work/provkit" image patch --policy "$work/demo/policy.yaml" --avb-key "$ref/testkey_rsa2048.pem" "$fw" --out "$work/patched")
python3 "$ref/avbtool.py" verify_image --image "$work/patched/vbmeta.img" >/dev/null
if [ "$fstype" = ext4 ]; then e2fsck -fn "$work/patched/product.img" >/dev/null; fi
printf "%-8s %10s %12s\n" route seconds "peak RSS MiB"
for r in "$m" "$p"; do
  read -r n s k <<<"$r"
  printf "%-8s %10.1f %12.1f\n" "$n" "$s" "$(echo "$k / 1024" | bc -l)"
done
printf "file system bytes: input %s, manual %s, provkit %s\n" "$img_size" "$manual_fs" "$(fs_size "$work/patched/product.img")"
read -r _ ms _ <<<"$m"; read -r _ ps _ <<<"$p"
printf "ratio provkit/manual: %.2f (target <= 0.5)\n" "$(echo "$ps / $ms" | bc -l)"
