#!/usr/bin/env bash
# Compares provkit's EROFS reader with erofs-utils on one job: get the SHA-256 of one APK out of an
# lz4hc-compressed system image holding thousands of other files.
#
#   baseline: fsck.erofs --extract=<dir> <image>, then sha256sum <dir>/<apk>
#             (erofs-utils cannot extract a single file, and mounting needs root)
#   provkit:  firmware/erofs: open the image, look the APK up, read it through (BenchmarkOpenFindRead)
#
# Usage: scripts/bench-erofs.sh [apk-MiB] [small-files]     (defaults: 64 MiB, 3000 files)
# Prints both times and the ratio provkit/baseline (lower is better).
set -euo pipefail
cd "$(dirname "$0")/.."
apk_mib=${1:-64}
files=${2:-3000}
for tool in mkfs.erofs fsck.erofs sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "bench-erofs: $tool is missing (apt-get install erofs-utils)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src
apk=system/app/Messenger/Messenger.apk

echo "bench-erofs: building a tree: ${apk_mib} MiB APK + ${files} small files" >&2
python3 - "$src" "$apk" "$apk_mib" "$files" <<'EOF'
import os, random, sys
src, apk, mib, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
r = random.Random(1)
words = [b"android", b"permission", b"activity", b"<manifest ", b"xmlns", b"com.example.", b"\n", b"0000"]
def mixed(n):
    out = bytearray()
    while len(out) < n:
        if r.random() < 0.33:
            out += r.randbytes(256 + r.randrange(8192))
        else:
            out += b"".join(r.choice(words) for _ in range(200 + r.randrange(2000)))
    return bytes(out[:n])
for i in range(files):
    d = os.path.join(src, "system", "lib", "d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "f%03d.so" % (i % 100)), "wb").write(mixed(500 + r.randrange(4000)))
os.makedirs(os.path.dirname(os.path.join(src, apk)), exist_ok=True)
with open(os.path.join(src, apk), "wb") as f:
    for _ in range(mib):
        f.write(mixed(1 << 20))
EOF
img=$work/system.img
mkfs.erofs --quiet -zlz4hc "$img" "$src"
want=$(sha256sum "$src/$apk" | cut -d' ' -f1)
echo "bench-erofs: image $(du -h "$img" | cut -f1), APK sha256 $want" >&2

now() { date +%s.%N; }
best_base=""
for run in 1 2 3; do
  rm -rf "$work/out"
  t0=$(now)
  fsck.erofs --extract="$work/out" "$img" >/dev/null
  got=$(sha256sum "$work/out/$apk" | cut -d' ' -f1)
  t1=$(now)
  [[ $got == "$want" ]] || { echo "bench-erofs: fsck.erofs extracted a different APK" >&2; exit 1; }
  t=$(python3 -c "print($t1 - $t0)")
  if [[ -z $best_base ]] || python3 -c "import sys; sys.exit(0 if $t < $best_base else 1)"; then best_base=$t; fi
done

out=$(PROVKIT_EROFS_BENCH_IMAGE=$img PROVKIT_EROFS_BENCH_PATH=$apk \
  go test ./firmware/erofs/ -run '^$' -bench '^BenchmarkOpenFindRead$' -benchtime=3x -count=3 -benchmem)
echo "$out" | grep Benchmark >&2
best_pk=$(echo "$out" | awk '/^BenchmarkOpenFindRead/ { print $3 / 1e9 }' | sort -g | head -1)

python3 - "$best_base" "$best_pk" <<'EOF'
import sys
base, pk = float(sys.argv[1]), float(sys.argv[2])
print(f"baseline (fsck.erofs --extract + sha256sum): {base:.3f} s")
print(f"provkit  (open + find + read + sha256):       {pk:.3f} s")
print(f"ratio provkit/baseline: {pk / base:.3f}")
EOF
