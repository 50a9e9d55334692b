#!/usr/bin/env bash
# Runs provkit's whole test suite. On a fresh Debian machine with Go it first installs the reference
# tools the tests use as oracles (apt-get, as root or through sudo), then runs every Go test with
# PROVKIT_REQUIRE_TOOLS=1 so that a missing tool fails the run instead of skipping tests.
#
# Usage: scripts/test.sh [go test flags...]     e.g. scripts/test.sh -run TestVerify ./firmware/apk/
# It prints a line per package as each finishes, the elapsed time every 30 s, and the total.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian installs debugfs, mke2fs, e2fsck and veritysetup in /usr/sbin, which is not on an
# ordinary user's PATH: without it they would look missing (and the tests needing them fail).
export PATH="$PATH:/usr/sbin:/sbin"

# Debian packages the tests need, and one program from each to tell whether it is installed.
packages=(
  apksigner:apksigner aapt:aapt zipalign:zipalign openjdk-17-jre-headless:java
  adb:adb fastboot:fastboot android-sdk-libsparse-utils:simg2img
  e2fsprogs:debugfs erofs-utils:mkfs.erofs blueprint-tools:bpfmt libxml2-utils:xmllint
  make:make openssl:openssl mkbootimg:mkbootimg cryptsetup-bin:veritysetup zip:zip unzip:unzip patch:patch
  time:/usr/bin/time postgresql:/usr/lib/postgresql/15/bin/initdb chromium:chromium tmux:tmux poppler-utils:pdftoppm
)
missing=()
for p in "${packages[@]}"; do
  command -v "${p#*:}" >/dev/null 2>&1 || missing+=("${p%%:*}")
done
if ((${#missing[@]})); then
  echo "test.sh: installing reference tools: ${missing[*]}" >&2
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Test inputs fetched from Debian rather than committed (see scripts/fetch-testdata.sh).
scripts/fetch-testdata.sh

export PROVKIT_REQUIRE_TOOLS=1
args=("$@")
((${#args[@]})) || args=(./...)

# go test prints "ok <package> <time>" (or FAIL) as each package finishes; the first ones take a
# while (everything compiles first), so a line every 30 s says how far it got.
pkgs=$(go list "${args[@]}" 2>/dev/null | wc -l || true)
expect=""
(($#)) || expect="; expect several minutes on 2 cores (7-8 min from a cold cache)"
echo "test.sh: testing ${pkgs:-?} packages$expect" >&2
log=$(mktemp)
start=$SECONDS
(
  while sleep 30; do
    done_=$(grep -cE '^(ok|FAIL|\?) ' "$log" || true)
    echo "test.sh: $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s, $done_/${pkgs:-?} packages done" >&2
  done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null; rm -f "$log"' EXIT
rc=0
go test -timeout 30m "${args[@]}" 2>&1 | tee "$log" || rc=$?
elapsed=$((SECONDS - start))
echo "test.sh: go test took $((elapsed / 60))m$((elapsed % 60))s (exit status $rc)" >&2
exit "$rc"
