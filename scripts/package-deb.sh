#!/usr/bin/env bash
# Builds a Debian package of provkit for factory PCs and lab machines without Go:
# dist/provkit_<version>_amd64.deb with a static binary (CGO_ENABLED=0), the man pages generated
# from the commands, and bash, zsh and fish completion. No Depends (the binary needs nothing);
# Recommends adb and fastboot (provkit talks to devices itself, but through the adb server when
# one runs, and a line still uses fastboot for USB bootloaders).
#
# Usage: scripts/package-deb.sh [-o <dir>] [<version>]
#   <version>  Debian version, e.g. 0.3.1; default: from "git describe --tags" (v0.3.1 -> 0.3.1),
#              else 0.0.0~git<commit date>.<short commit>, else 0.0.0~dev
#   -o <dir>   where the .deb goes (default: dist)
# Install: sudo apt install ./dist/provkit_<version>_amd64.deb   (or dpkg -i)
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
while getopts "o:h" opt; do
  case $opt in
    o) out=$OPTARG ;;
    h) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: scripts/package-deb.sh [-o <dir>] [<version>]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
(($# <= 1)) || { echo "usage: scripts/package-deb.sh [-o <dir>] [<version>]" >&2; exit 2; }

version=${1:-}
if [[ -z $version ]]; then
  if tag=$(git describe --tags --match 'v[0-9]*' --exact-match 2>/dev/null); then
    version=${tag#v}
  elif rev=$(git log -1 --format='%cd.%h' --date=format:%Y%m%d 2>/dev/null); then
    version="0.0.0~git$rev"
  else
    version="0.0.0~dev"
  fi
fi
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "package-deb.sh: version \"$version\" is not a Debian version (a digit first, then letters, digits, . + ~ -)" >&2
  exit 2
fi
command -v dpkg-deb >/dev/null || { echo "package-deb.sh: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" "$root/usr/share/doc/provkit" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"

echo "package-deb.sh: building provkit $version (static, linux/amd64)" >&2
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath \
  -ldflags "-s -w -X github.com/provkit/provkit/internal/buildinfo.Version=$version" \
  -o "$root/usr/bin/provkit" ./cmd/provkit

# Man pages and completion come from the commands themselves, so they match the binary.
go run ./cmd/provkit/internal/gendocs -out "$stage/gen"
for f in "$stage"/gen/man/*.1; do
  gzip -9n <"$f" >"$root/usr/share/man/man1/$(basename "$f").gz"
done
bin=$root/usr/bin/provkit
if [[ $(go env GOHOSTOS)/$(go env GOHOSTARCH) == linux/amd64 ]]; then
  "$bin" completion bash >"$root/usr/share/bash-completion/completions/provkit"
  "$bin" completion zsh >"$root/usr/share/zsh/vendor-completions/_provkit"
  "$bin" completion fish >"$root/usr/share/fish/vendor_completions.d/provkit.fish"
else
  go run ./cmd/provkit completion bash >"$root/usr/share/bash-completion/completions/provkit"
  go run ./cmd/provkit completion zsh >"$root/usr/share/zsh/vendor-completions/_provkit"
  go run ./cmd/provkit completion fish >"$root/usr/share/fish/vendor_completions.d/provkit.fish"
fi
gzip -9n <README.md >"$root/usr/share/doc/provkit/README.md.gz"

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: provkit
Version: $version
Architecture: amd64
Maintainer: ${DEB_MAINTAINER:-provkit developers <provkit@localhost>}
Installed-Size: $size
Section: utils
Priority: optional
Recommends: adb, fastboot
Homepage: https://github.com/provkit/provkit
Description: get Android devices compliant with a preinstall mandate, and prove it
 provkit verifies signed APKs, patches AOSP build trees to include a mandated
 app, reads and audits firmware images, and validates devices over ADB and
 fastboot, all against one policy file. It includes a device simulator that
 the real adb and fastboot programs drive.
CONTROL
chmod -R u=rwX,go=rX "$root"
chmod 0755 "$bin"

mkdir -p "$out"
deb=$out/provkit_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
