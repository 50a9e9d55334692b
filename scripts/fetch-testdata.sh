#!/usr/bin/env bash
# Fetches test inputs that come from Debian packages instead of being committed, into
# testdata/.cache/ (git-ignored). Idempotent: does nothing when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=testdata/.cache
mkdir -p "$cache"

# Debian's androguard package ships an older copy of Google's apksig test suite (its
# examples/signing/apksig) and some real-world APKs (examples/android, examples/tests). The
# firmware/apk tests cross-check provkit against Debian's apksigner on them.
androguard="$cache/androguard"
if [[ ! -f $androguard/.done ]]; then
  rm -rf "$androguard" && mkdir -p "$androguard/deb"
  (cd "$androguard/deb" && apt-get download androguard >/dev/null 2>&1) ||
    { echo "fetch-testdata.sh: 'apt-get download androguard' failed (run 'apt-get update' first?)" >&2; exit 1; }
  dpkg-deb -x "$androguard"/deb/androguard_*.deb "$androguard/x"
  examples="$androguard/x/usr/share/doc/androguard/examples"
  mv "$examples/signing/apksig" "$androguard/apksig"
  mkdir -p "$androguard/apks"
  find "$examples" -name '*.apk' -size -20M -exec cp -n {} "$androguard/apks/" \;
  cp "$androguard/x/usr/share/doc/androguard/copyright" "$androguard/COPYRIGHT"
  rm -rf "$androguard/x" "$androguard/deb"
  touch "$androguard/.done"
fi
