#!/usr/bin/env bash
# setup.sh: installs what aminator needs to build, bake and test on a
# Debian machine, as root. Safe to run again; it only installs what is missing.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (it installs packages; baking needs root too)" >&2; exit 1; }

need=()
for pair in mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs sfdisk:fdisk losetup:mount dpkg-deb:dpkg \
            mkfs.xfs:xfsprogs pgrep:procps update-ca-certificates:ca-certificates git:git gcc:gcc \
            qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils bc:bc \
            rpmbuild:rpm createrepo_c:createrepo-c mkfs.vfat:dosfstools mcopy:mtools; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
[ -f /usr/share/ovmf/OVMF.fd ] || need+=(ovmf)   # UEFI firmware for boot tests of uefi images
if [ ${#need[@]} -gt 0 ]; then
  echo "setup.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# Go: the one on PATH or in /usr/local/go, else Debian's. Go 1.21 or later
# fetches the toolchain go.mod asks for from the module proxy by itself.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup.sh: installing golang-go" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go >/dev/null
fi
minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${minor:-0}" -lt 21 ]; then
  echo "setup.sh: $(go env GOVERSION) is too old; install Go 1.21 or later (it then fetches the toolchain go.mod names)" >&2
  exit 1
fi
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
go mod download
