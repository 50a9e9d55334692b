#!/usr/bin/env bash
# Benchmarks a factory station on simulated phones (provkit sim) and prints, per run, phones per
# minute, the station's own overhead (ledger, identification, scheduling) as a fraction of the run
# time, and the station's peak RSS. Nothing lost, nothing duplicated: verdicts and distinct serials
# are counted from the ledger afterwards.
#
#   1. check only, one station, SQLite; beside it 'provkit check --direct' over the same phones,
#      the same work without a station (the ratio is the station's cost over a bare check)
#   2. flash + check, one station, SQLite
#   3. flash + check, 4 stations at once writing to one PostgreSQL (started here, as nobody)
#
# Usage: scripts/bench-line.sh            PHONES=64 JOBS=16 by default
set -euo pipefail
cd "$(dirname "$0")/.."
PHONES=${PHONES:-64}
JOBS=${JOBS:-16}
work=$(mktemp -d /tmp/provkit-bench-line-XXXXXX)
chmod 755 "$work"
pids=()
pgbin=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $pgbin && -d $work/pg/data ]]; then
    $asuser "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "building provkit..." >&2
go build -o "$work/provkit" ./cmd/provkit
pk=$work/provkit
export HOME=$work/home # the adb key the stations make
mkdir -p "$HOME"

# The sample app and policy of 'provkit demo', a firmware of two images, and a scenario of
# compliant phones with partitions to flash.
"$pk" demo --keep "$work/demo" >/dev/null 2>&1
mkdir "$work/fw"
head -c $((1 << 20)) /dev/urandom >"$work/fw/boot.img"
head -c $((4 << 20)) /dev/urandom >"$work/fw/system.img"
cat >"$work/demo/bench.yaml" <<'EOF'
apiVersion: provkit.dev/v1
kind: SimulatorScenario
devices:
  - {serial: "BENCH-%03d", android: 14, model: Bench Phone, slotted: false,
     partitions: [{name: boot, size: 1M}, {name: system, size: 8M}], faults: {rebootDelay: 1s},
     packages: [{name: ru.oneme.app, apk: messenger.apk, system: /product/app/Messenger, granted: [android.permission.POST_NOTIFICATIONS]}]}
EOF
policy=$work/demo/policy.yaml

"$pk" sim --scenario "$work/demo/bench.yaml" --devices "$PHONES" --base-port 0 >"$work/sim.out" 2>"$work/sim.err" &
pids+=($!)
for _ in $(seq 1 600); do
  [[ $(wc -l <"$work/sim.out") -ge $PHONES ]] && break
  sleep 0.1
done
[[ $(wc -l <"$work/sim.out") -ge $PHONES ]] || { echo "the simulator did not start" >&2; cat "$work/sim.err" >&2; exit 1; }
mapfile -t tcp < <(awk '{print "--tcp\n" $2 "=" $3}' "$work/sim.out")
mapfile -t direct < <(awk '{print "--direct\n" $2}' "$work/sim.out")

# station <label> <ledger> [args...]: runs one station over every phone, prints its figures.
station() {
  local label=$1 ledger=$2
  shift 2
  /usr/bin/time -f "%e %M" -o "$work/time" "$pk" line run --policy "$policy" --station "$label" --ledger "$ledger" \
    --jobs "$JOBS" --max-phones "$PHONES" --json --poll 200ms --boot-timeout 5m "$@" >"$work/$label.jsonl" 2>"$work/$label.err" || {
    echo "station $label failed:" >&2; cat "$work/$label.err" >&2; exit 1; }
  read -r secs rss <"$work/time"
  report "$label" "$ledger" "$secs" "$rss" "$PHONES"
}

# report <label> <ledger> <seconds> <peak RSS KiB> <phones>
report() {
  "$pk" ledger stats --ledger "$2" --json >"$work/stats.json"
  "$pk" ledger export --ledger "$2" --json >"$work/export.json"
  python3 - "$@" "$work/stats.json" "$work/export.json" <<'EOF'
import json, sys
label, ledger, secs, rss, phones, stats, export = sys.argv[1:]
s = json.load(open(stats)); vs = json.load(open(export))["verdicts"]
t = s["timing"]
serials = {v["serial"] for v in vs}
passes = sum(v["verdict"] == "pass" for v in vs)
print(f"{label:<34} {int(phones)*60/float(secs):8.1f} phones/min  {float(secs):7.1f} s  overhead {100*t['overheadFraction']:5.2f}%"
      f"  peak RSS {int(rss)/1024:6.1f} MiB  verdicts {len(vs)} ({passes} pass), distinct serials {len(serials)}")
per = ", ".join(f"{k} {v:.1f}" for k, v in sorted(t["perStepSeconds"].items()))
print(f"{'':<34} step seconds summed over phones: {per}; run seconds {t['runSeconds']:.1f}")
if len(vs) != int(phones) or len(serials) != int(phones):
    print(f"{label}: LOST OR DUPLICATED: {len(vs)} verdicts for {len(serials)} serials, want {phones}", file=sys.stderr)
    sys.exit(1)
EOF
}

echo "$PHONES simulated phones, --jobs $JOBS, $(nproc) CPUs" >&2
echo
echo "1. check only, one station, SQLite"
station check-only "$work/check.db" "${tcp[@]}"
start=$(date +%s.%N)
/usr/bin/time -f "%e %M" -o "$work/time" "$pk" check --policy "$policy" --jobs "$JOBS" "${direct[@]}" >"$work/check.out" 2>&1 || true
read -r secs rss <"$work/time"
python3 -c "import sys; p=int(sys.argv[1]); s=float(sys.argv[2]); print(f\"{'reference: provkit check --direct':<34} {p*60/s:8.1f} phones/min  {s:7.1f} s  peak RSS {int(sys.argv[3])/1024:6.1f} MiB\")" "$PHONES" "$secs" "$rss"

echo
echo "2. flash + check, one station, SQLite"
station flash-check "$work/flash.db" --firmware "$work/fw" "${tcp[@]}"

echo
echo "3. flash + check, 4 stations at once, one PostgreSQL"
for d in /usr/lib/postgresql/*/bin; do [[ -x $d/pg_ctl ]] && pgbin=$d; done
[[ -n $pgbin ]] || { echo "PostgreSQL is not installed (Debian package postgresql)" >&2; exit 1; }
asuser=""
mkdir "$work/pg"
if [[ $(id -u) -eq 0 ]]; then
  chown nobody "$work/pg"
  asuser="runuser -u nobody --"
fi
$asuser "$pgbin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
$asuser "$pgbin/pg_ctl" -D "$work/pg/data" -o "-k $work/pg -c listen_addresses= -c max_connections=100" -l "$work/pg/log" -w start >/dev/null
pg="postgres://postgres@/postgres?host=$work/pg&sslmode=disable"
per=$((PHONES / 4))
start=$(date +%s.%N)
spids=()
for i in 0 1 2 3; do
  mapfile -t part < <(sed -n "$((i * per + 1)),$(((i + 1) * per))p" "$work/sim.out" | awk '{print "--tcp\n" $2 "=" $3}')
  /usr/bin/time -f "%e %M" -o "$work/time$i" "$pk" line run --policy "$policy" --station "pg-st$i" --ledger "$pg" --firmware "$work/fw" \
    --jobs "$JOBS" --max-phones "$per" --json --poll 200ms --boot-timeout 5m "${part[@]}" >"$work/pg$i.jsonl" 2>"$work/pg$i.err" &
  spids+=($!)
done
for i in 0 1 2 3; do
  wait "${spids[$i]}" || { echo "station pg-st$i failed:" >&2; cat "$work/pg$i.err" >&2; exit 1; }
done
end=$(date +%s.%N)
rss=$(cat "$work"/time[0-3] | awk '$2 > m {m = $2} END {print m}')
report "4 stations (max RSS of one)" "$pg" "$(python3 -c "print($end - $start)")" "$rss" "$((per * 4))"
