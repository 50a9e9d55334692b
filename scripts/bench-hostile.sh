#!/usr/bin/env bash
# 16 hostile devices at once (--jobs 16), each answering `dumpsys package` with 60 MB of output:
# provkit check must stop each command at what its parser accepts (4 MiB) and keep its peak RSS
# under 256 MiB. Prints the peak RSS (VmHWM of the benchmark process) and the time per check.
#
# Usage: scripts/bench-hostile.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3}
out=$(go test ./provision/check/ -run '^$' -bench BenchmarkHostileDevices -benchtime "${count}x" 2>&1)
line=$(grep '^BenchmarkHostileDevices' <<<"$out") || { echo "$out" >&2; exit 1; }
ns=$(awk '{print $3}' <<<"$line")
rss=$(awk '{for (i=1;i<=NF;i++) if ($i=="peak-RSS-MiB") print $(i-1)}' <<<"$line")
printf '16 hostile devices (60 MB dumpsys each), --jobs 16: %.2f s per check of all 16, peak RSS %s MiB (target < 256)\n' \
  "$(awk -v n="$ns" 'BEGIN{print n/1e9}')" "$rss"
awk -v r="$rss" 'BEGIN{exit !(r < 256)}' || { echo "peak RSS over 256 MiB" >&2; exit 1; }
