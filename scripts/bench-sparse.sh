#!/usr/bin/env bash
# Compares provkit image sparse/unsparse with img2simg/simg2img on one generated raw image and
# prints the time ratio (provkit / reference; below 1 means provkit is faster).
#
# Usage: scripts/bench-sparse.sh [size-in-MiB]     (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-512}
for t in img2simg simg2img; do command -v "$t" >/dev/null || { echo "bench-sparse: $t is not installed" >&2; exit 1; }; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/provkit" ./cmd/provkit

# A raw image like a file system: a quarter random data, text, fill patterns, and zeros.
python3 - "$work/raw.img" "$size_mib" <<'PY'
import os, sys, random
path, mib = sys.argv[1], int(sys.argv[2])
random.seed(1)
rand = os.urandom(1 << 20)
text = (b"ro.product.name=provkit\n" * 50000)[: 1 << 20]
fill = b"\xde\xad\xbe\xef" * (1 << 18)
zero = bytes(1 << 20)
with open(path, "wb") as f:
    for i in range(mib):
        f.write([rand, text, fill, zero][i % 4])
PY

now() { date +%s.%N; }
timeit() { local s e; s=$(now); "$@" >/dev/null; e=$(now); echo "$e - $s" | bc -l; }

t_ref=$(timeit img2simg "$work/raw.img" "$work/ref.simg")
t_pk=$(timeit "$work/provkit" image sparse "$work/raw.img" "$work/pk.simg")
cmp "$work/ref.simg" "$work/pk.simg" || { echo "bench-sparse: outputs differ" >&2; exit 1; }
printf 'sparse   %5d MiB: img2simg %.3fs  provkit %.3fs  ratio %.2f\n' "$size_mib" "$t_ref" "$t_pk" "$(echo "$t_pk / $t_ref" | bc -l)"

t_ref=$(timeit simg2img "$work/ref.simg" "$work/ref.raw")
t_pk=$(timeit "$work/provkit" image unsparse "$work/ref.simg" "$work/pk.raw")
cmp "$work/ref.raw" "$work/pk.raw" || { echo "bench-sparse: expanded images differ" >&2; exit 1; }
printf 'unsparse %5d MiB: simg2img %.3fs  provkit %.3fs  ratio %.2f\n' "$size_mib" "$t_ref" "$t_pk" "$(echo "$t_pk / $t_ref" | bc -l)"
