#!/usr/bin/env bash
# Pull (or sideload) throughput with a simulated device: provkit's ADB client over a direct adbd
# connection and through the adb server, against the adb program itself (`adb pull`, `adb
# sideload`), in one run. Prints MB/s and
# the ratio of each provkit path to adb (higher is better; 1.0 = as fast as adb).
#
# Usage: scripts/bench-adb.sh [iterations] [Pull|Sideload]   (default 10 Pull; needs adb, as
#        scripts/test.sh installs)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10}"
what="${2:-Pull}"
case "$what" in Pull|Sideload) ;; *) echo "bench-adb: want Pull or Sideload, got $what" >&2; exit 2 ;; esac
out=$(go test -run '^$' -bench "^Benchmark${what}\$" -benchtime "${n}x" ./provision/adb/)
echo "$out" | grep -E '^Benchmark' >&2
awk '
  /^Benchmark(Pull|Sideload)\// {
    split($1, name, "/"); sub(/-[0-9]+$/, "", name[2])
    for (i = 1; i <= NF; i++) if ($i == "MB/s") mbs[name[2]] = $(i-1)
  }
  END {
    if (!("adb-cli" in mbs)) { print "bench-adb: no adb-cli result (is adb installed?)" > "/dev/stderr"; exit 1 }
    printf "%-8s %10s %14s\n", "path", "MB/s", "ratio vs adb"
    for (p in mbs) printf "%-8s %10.1f %14.2f\n", p, mbs[p], mbs[p] / mbs["adb-cli"]
  }' <<<"$out"
