#!/usr/bin/env bash
# Compares provkit's firmware readers with the reference tools in one run and prints the ratios
# (provkit time / reference time; below 1 means provkit is faster):
#   - AVB hash tree of a 64 MiB partition: firmware/avb vs cryptsetup's `veritysetup format`
#   - dm-verity FEC of a 32 MiB partition: firmware/avb vs `veritysetup format --fec-device`
#   - REPLACE_XZ operations of a 32 MiB OTA partition: firmware/payload vs `xz -dc -T1`
#   - ZSTD operations of the same partition: firmware/payload vs `zstd -dc -T1`
# plus the throughput of range reads of a payload partition once decoded operations are cached.
# Needs veritysetup (cryptsetup-bin), xz and zstd. Usage: scripts/bench-firmware.sh [benchtime, default 3x]
set -euo pipefail
cd "$(dirname "$0")/.."
bt="${1:-3x}"
for tool in veritysetup xz zstd; do
  command -v "$tool" >/dev/null || { echo "bench-firmware: $tool is not installed" >&2; exit 1; }
done
out=$(PROVKIT_REQUIRE_TOOLS=1 go test -run '^$' -benchtime "$bt" \
  -bench 'HashtreeVsVeritysetup|FECVsVeritysetup|PartitionReadCold|PartitionReadZstdCold|PartitionReadWarm' ./firmware/avb/ ./firmware/payload/)
echo "$out" | grep -E '^Benchmark' >&2
ratio() { echo "$out" | grep -E "^$1" | grep -oE "[0-9.]+ $2" | cut -d' ' -f1; }
printf 'avb hash tree, 64 MiB:         provkit/veritysetup = %s\n' "$(ratio BenchmarkHashtreeVsVeritysetup provkit/veritysetup)"
printf 'avb FEC, 32 MiB:               provkit/veritysetup = %s\n' "$(ratio BenchmarkFECVsVeritysetup provkit/veritysetup)"
printf 'payload REPLACE_XZ, 32 MiB:    provkit/xz          = %s\n' "$(ratio BenchmarkPartitionReadCold provkit/xz)"
printf 'payload ZSTD, 32 MiB:          provkit/zstd        = %s\n' "$(ratio BenchmarkPartitionReadZstdCold provkit/zstd)"
printf 'payload cached range reads:    %s MB/s\n' "$(echo "$out" | grep -E '^BenchmarkPartitionReadWarm' | grep -oE '[0-9.]+ MB/s' | cut -d' ' -f1)"
