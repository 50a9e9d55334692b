#!/usr/bin/env bash
# Runs provkit's whole test suite. On a fresh Debian machine with Go it first installs the reference
# tools the tests use as oracles (apt-get, as root or through sudo), then runs every Go test with
# PROVKIT_REQUIRE_TOOLS=1 so that a missing tool fails the run instead of skipping tests.
#
# Usage: scripts/test.sh [go test flags...]     e.g. scripts/test.sh -run TestVerify ./firmware/apk/
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
  make:make openssl:openssl mkbootimg:mkbootimg cryptsetup-bin:veritysetup zip:zip patch:patch
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
if (($#)); then
  exec go test -timeout 30m "$@"
fi
exec go test -timeout 30m ./...
