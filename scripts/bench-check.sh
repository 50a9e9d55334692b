#!/usr/bin/env bash
# provkit check against what a user scripts today, in one run: 16 simulated phones each holding
# the same 20 MB signed APK, attached to a private adb server (its own HOME and port, killed at
# the end).
#   script:  for each device in turn: adb shell pm path, adb pull, apksigner verify --print-certs
#   provkit: provkit check --all (the same devices, through the same adb server)
# Prints wall times, provkit/script (target <= 0.1) and provkit's time for 16 devices over its
# time for 1 (target <= 3).
#
# Usage: scripts/bench-check.sh [devices] [apk-MB]     (default 16 and 20; needs adb and apksigner)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-16}"
mb="${2:-20}"
for tool in adb apksigner; do command -v "$tool" >/dev/null || { echo "bench-check: $tool is not installed (scripts/test.sh installs it)" >&2; exit 1; }; done

work=$(mktemp -d)
bin="$work/provkit"
go build -o "$bin" ./cmd/provkit
export HOME="$work/home" ANDROID_USER_HOME="$work/home/.android"
mkdir -p "$ANDROID_USER_HOME"
export ANDROID_ADB_SERVER_PORT=$(( 20000 + RANDOM % 20000 ))
simpid=""
cleanup() {
  [ -n "$simpid" ] && kill "$simpid" 2>/dev/null && wait "$simpid" 2>/dev/null || true
  adb kill-server >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" demo --keep "$work/demo" --asset-size $(( mb * 1000 * 1000 )) >/dev/null 2>&1
cat >"$work/bench.yaml" <<YAML
apiVersion: provkit.dev/v1
kind: SimulatorScenario
devices:
  - {serial: "BENCH%02d", android: 14, packages: [{name: ru.oneme.app, apk: $work/demo/messenger.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
YAML
adb start-server >/dev/null 2>&1
"$bin" sim --devices "$n" --scenario "$work/bench.yaml" --base-port 0 --adb-connect --json >"$work/sim.json" 2>"$work/sim.log" &
simpid=$!
for _ in $(seq 1 100); do
  [ "$(adb devices | grep -c 'device$' || true)" -ge "$n" ] && break
  sleep 0.2
done
[ "$(adb devices | grep -c 'device$')" -ge "$n" ] || { echo "bench-check: the simulated devices did not attach" >&2; cat "$work/sim.log" >&2; exit 1; }
serials=$(adb devices | awk '$2 == "device" {print $1}')
first=$(echo "$serials" | head -n1)

now() { date +%s.%N; }
t0=$(now)
for s in $serials; do
  p=$(adb -s "$s" shell pm path ru.oneme.app | head -n1 | tr -d '\r' | sed 's/^package://')
  adb -s "$s" pull "$p" "$work/pulled.apk" >/dev/null
  apksigner verify --print-certs "$work/pulled.apk" >/dev/null
done
t1=$(now)
script=$(echo "$t1 - $t0" | bc)

# provkit's runs are short (a fraction of a second), so one sample is noise: time each of the two
# runs $reps times, alternating them so that both see the same machine, and take the medians.
reps="${BENCH_REPS:-5}"
all=() one=()
for _ in $(seq 1 "$reps"); do
  a=$(now)
  "$bin" check --policy "$work/demo/policy.yaml" --all --jobs 8 >"$work/check.txt"
  b=$(now)
  "$bin" check --policy "$work/demo/policy.yaml" --serial "$first" >/dev/null
  c=$(now)
  grep -c ' PASS ' "$work/check.txt" | grep -qx "$n" || { echo "bench-check: provkit did not pass every device:" >&2; cat "$work/check.txt" >&2; exit 1; }
  all+=("$(echo "$b - $a" | bc)") one+=("$(echo "$c - $b" | bc)")
done
# For reference, without the cache: --pull-all pulls and verifies every phone's APK.
a=$(now)
"$bin" check --policy "$work/demo/policy.yaml" --all --jobs 8 --pull-all >/dev/null
pullall=$(echo "$(now) - $a" | bc)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "provkit check --all, each run (s):  ${all[*]}"
echo "provkit check 1 device, each run (s): ${one[*]}"

awk -v n="$n" -v mb="$mb" -v reps="$reps" -v s="$script" -v p="$(median "${all[@]}")" -v one="$(median "${one[@]}")" -v pa="$pullall" 'BEGIN {
  printf "%d devices, %d MB APK each\n", n, mb
  printf "script (pm path + adb pull + apksigner, in sequence): %7.2f s\n", s
  printf "provkit check --all (median of %d):                   %7.2f s\n", reps, p
  printf "provkit check, 1 device (median of %d):              %7.2f s\n", reps, one
  printf "provkit/script:                %6.3f   (target <= 0.1)\n", p / s
  printf "provkit %d devices / 1 device: %6.2f   (target <= 3)\n", n, p / one
  printf "for reference, check --all --pull-all (no cache, one run): %.2f s, /script %.3f\n", pa, pa / s
}'
