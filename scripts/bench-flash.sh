#!/usr/bin/env bash
# Flash a factory directory (boot, vbmeta and a SYSTEM_MB MiB sparse ext4 system image holding
# real files, made with mke2fs -d and img2simg) into simulated phones over loopback TCP:
#   1. Debian's fastboot flashall, one phone
#   2. provkit flash, the same phone
#   3. provkit flash, DEVICES phones at once
# Prints wall time and peak RSS of each, and the ratios provkit/fastboot (target <= 1.0) and
# DEVICES-at-once/one (target <= 3.0). The firmware is not audited (--no-audit): the audit is
# measured by scripts/bench-firmware.sh; this measures the flash.
#
# Usage: scripts/bench-flash.sh   (SYSTEM_MB=1024 FILES_MB=256 DEVICES=8 by default; needs fastboot,
#        mke2fs, img2simg, GNU time; about (DEVICES+2) x FILES_MB of disk for the phones' partitions)
set -euo pipefail
cd "$(dirname "$0")/.."
system_mb="${SYSTEM_MB:-1024}"
files_mb="${FILES_MB:-256}"
devices="${DEVICES:-8}"
for t in fastboot mke2fs img2simg /usr/bin/time python3; do
  command -v "$t" >/dev/null || { echo "bench-flash: $t is missing (apt-get install fastboot e2fsprogs android-sdk-libsparse-utils time)" >&2; exit 1; }
done
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-flash.XXXXXX")"
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/provkit" ./cmd/provkit

# The firmware: a system image with FILES_MB MiB of files (random bytes, 64 KiB to 4 MiB each).
src="$work/src"; mkdir -p "$src/app" "$src/lib" "$src/etc"
python3 - "$src" "$files_mb" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(12)
i = 0
while total > 0:
    n = min(total, rng.choice([64 << 10, 256 << 10, 1 << 20, 4 << 20]))
    d = os.path.join(root, ["app", "lib", "etc"][i % 3], "d%d" % (i % 40))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%d.bin" % i), "wb") as f:
        f.write(os.urandom(n))
    total -= n
    i += 1
PY
fw="$work/fw"; mkdir -p "$fw"
mke2fs -q -t ext4 -b 4096 -d "$src" "$work/system.raw" "${system_mb}M"
img2simg "$work/system.raw" "$fw/system.img"
rm -f "$work/system.raw"
head -c $((16 << 20)) /dev/urandom >"$fw/boot.img"
head -c 4096 /dev/urandom >"$fw/vbmeta.img"

# The phones: DEVICES simulated phones in the bootloader; fastboot and provkit's single-phone run
# both flash phone 0, the many-phone run flashes all of them.
cat >"$work/scenario.yaml" <<YAML
devices:
  - serial: BENCH
    device: benchphone
    unlocked: true
    mode: bootloader
    partitions:
      - {name: boot, size: 32M}
      - {name: vbmeta, size: 64K}
      - {name: system, size: ${system_mb}M, type: ext4}
YAML
echo "require board=benchphone" >"$fw/android-info.txt"
"$work/provkit" sim --devices "$devices" --scenario "$work/scenario.yaml" --base-port 0 --json >"$work/sim.json" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 100); do grep -q '"fastboot"' "$work/sim.json" 2>/dev/null && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/sim.json" 2>/dev/null && break; sleep 0.1; done
mapfile -t addrs < <(python3 -c 'import json,sys; [print(d["fastboot"]) for d in json.load(open(sys.argv[1]))["devices"]]' "$work/sim.json")
[ "${#addrs[@]}" -eq "$devices" ] || { echo "bench-flash: the simulator did not start"; cat "$work/sim.log"; exit 1; }

measure() { # name, command...: prints "name seconds rss_kib"
  local name=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.$name" "$@" >"$work/out.$name" 2>&1 || { echo "bench-flash: $name failed:"; cat "$work/out.$name"; exit 1; }
  read -r secs rss user sys <"$work/time.$name"
  echo "$name $secs $rss $user $sys"
}

sparse_mb=$(( $(stat -c %s "$fw/system.img") >> 20 ))
echo "firmware: system.img ${system_mb} MiB (sparse file ${sparse_mb} MiB, ${files_mb} MiB of files), boot.img 16 MiB; ${devices} simulated phones, loopback TCP, $(nproc) cores"
fb=$(ANDROID_PRODUCT_OUT="$fw" measure fastboot fastboot -s "tcp:${addrs[0]}" --skip-reboot flashall)
one=$(measure provkit-1 "$work/provkit" flash --no-audit --skip-reboot --tcp "${addrs[0]}" "$fw")
tcp=(); for a in "${addrs[@]}"; do tcp+=(--tcp "$a"); done
simcpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' "/proc/$sim_pid/stat"; }
sim0=$(simcpu)
many=$(measure "provkit-$devices" "$work/provkit" flash --no-audit --skip-reboot --jobs "$devices" "${tcp[@]}" "$fw")
sim1=$(simcpu)
printf '%-12s %8s %12s %8s %8s\n' tool seconds "peak RSS" user sys
for l in "$fb" "$one" "$many"; do
  read -r n s r u y <<<"$l"
  printf '%-12s %8s %9d MiB %8s %8s\n' "$n" "$s" $(( r / 1024 )) "$u" "$y"
done
read -r _ fs _ <<<"$fb"; read -r _ os _ <<<"$one"; read -r _ ms mr _ <<<"$many"
python3 - "$fs" "$os" "$ms" "$mr" "$devices" <<'PY'
import sys
fs, os_, ms, mr, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print("ratio provkit/fastboot, one phone: %.2f (target <= 1.0)" % (os_ / fs))
print("ratio %s phones at once / one phone: %.2f (target <= 3.0)" % (n, ms / os_))
print("peak RSS of provkit flashing %s phones: %d MiB (target < 128)" % (n, mr // 1024))
PY
echo "CPU seconds the simulated phones spent receiving and writing during the ${devices}-phone run: $(python3 -c "print(round($sim1-$sim0,2))") (they share this machine's $(nproc) cores with provkit)"
