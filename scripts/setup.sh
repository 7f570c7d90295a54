#!/usr/bin/env bash
# setup.sh: installs what aminator needs to build, bake and test on a
# Debian machine, as root. Safe to run again; it only installs what is missing.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (it installs packages; baking needs root too)" >&2; exit 1; }

need=()
for pair in mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs sfdisk:fdisk losetup:mount dpkg-deb:dpkg \
            mkfs.xfs:xfsprogs mkfs.btrfs:btrfs-progs pgrep:procps update-ca-certificates:ca-certificates git:git gcc:gcc \
            qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils bc:bc \
            rpmbuild:rpm createrepo_c:createrepo-c mkfs.vfat:dosfstools mcopy:mtools \
            grub-mkimage:grub-common nsenter:util-linux ssh:openssh-client ssh-keygen:openssh-client \
            chromium:chromium \
            "qemu-$([ "$(uname -m)" = aarch64 ] && echo x86_64 || echo aarch64)-static:qemu-user-static"; do
            # chromium: the dashboard's browser test (test/e2e/isolated, chromedp); qemu-user-static:
            # bakes of the other architecture's images (arm64 on x86_64), registered below
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
[ -f /usr/share/ovmf/OVMF.fd ] || need+=(ovmf)   # UEFI firmware for boot tests of uefi images
# arm64 foundations and their boot tests: mmdebstrap's foreign mode wants arch-test; Graviton-like launches
command -v arch-test >/dev/null 2>&1 || need+=(arch-test)
command -v qemu-system-aarch64 >/dev/null 2>&1 || need+=(qemu-system-arm)
[ -f /usr/share/AAVMF/AAVMF_CODE.fd ] || need+=(qemu-efi-aarch64)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# Go: the one on PATH, in /usr/local/go or a Debian golang-1.NN, if it is
# 1.21 or later (which fetches the toolchain go.mod names from the module
# proxy by itself); else Debian's golang-go, or, where that is older (as on
# bookworm), the newest golang-1.NN from the release's backports.
go_ok() {
  local v minor
  v=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
  minor=$(printf '%s' "$v" | sed -E 's/^go1\.([0-9]+).*/\1/')
  [ "${minor:-0}" -ge 21 ] 2>/dev/null
}
# host_mirror prints the first Debian mirror the host's apt configuration
# names (deb822 or one-line): aminator never names a registry itself.
host_mirror() {
  local u
  u=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' | sed 's,/$,,' | grep '/debian$' | head -1)
  [ -n "$u" ] || u=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; break}}' | sed 's,/$,,' | grep '/debian$' | head -1)
  [ -n "$u" ] && printf '%s\n' "$u"
}
find_go() {
  local g
  for g in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go $(ls -d /usr/lib/go-1.*/bin/go 2>/dev/null | sort -V -r); do
    if [ -n "$g" ] && [ -x "$g" ] && go_ok "$g"; then echo "$g"; return 0; fi
  done
  return 1
}
if ! GO=$(find_go); then
  export DEBIAN_FRONTEND=noninteractive
  echo "setup.sh: installing Go from Debian" >&2
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends golang-go >/dev/null 2>&1 || true
  if ! GO=$(find_go); then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    mirror=$(host_mirror) || { echo "setup.sh: Go is too old and the host's apt configuration names no Debian mirror (a URI ending in /debian) to take backports from; install Go 1.21 or later and run again" >&2; exit 1; }
    if [ -n "$codename" ]; then
      echo "deb $mirror ${codename}-backports main" >/etc/apt/sources.list.d/aminator-backports.list
      apt-get update -q >/dev/null
      pkg=$(apt-cache search --names-only '^golang-1\.[0-9]+-go$' | awk '{print $1}' | sort -V | tail -1)
      [ -n "$pkg" ] && apt-get install -y -q --no-install-recommends -t "${codename}-backports" "$pkg" >/dev/null
    fi
    GO=$(find_go) || { echo "setup.sh: no Go 1.21 or later could be installed; install one and run again" >&2; exit 1; }
  fi
fi
export PATH="$(dirname "$GO"):$PATH"
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
# A static aminate: its download sandbox re-executes it inside the image,
# where a dynamically linked one would run on the image's own loader and
# libc (and finds none in an image of another architecture).
export CGO_ENABLED=0
go mod download
# Bakes of the other architecture's images (arm64 on an x86_64 host) run
# the package's scripts under qemu-user: register it with binfmt_misc, with
# the F flag (once per boot; run again, it changes nothing).
go run ./cmd/aminate init --binfmt
