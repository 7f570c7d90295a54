#!/usr/bin/env bash
# make-base.sh OUT.img [SUITE] [SIZE] [ARCH]
# Builds a small Debian root filesystem (mmdebstrap minbase) straight into an
# ext4 image file (mkfs.ext4 -d: no loop device, no mount), ready for
# `aminate images import`. Uses the mirror the host's apt configuration names.
# ARCH is Debian's name (amd64, arm64; default: the host's); another
# architecture's maintainer scripts run under qemu-user, which needs a
# binfmt_misc handler (aminate init --binfmt registers one).
set -euo pipefail
out=${1:?usage: make-base.sh OUT.img [SUITE] [SIZE] [ARCH]}
suite=${2:-bookworm}
size=${3:-1G}
arch=${4:-$(dpkg --print-architecture)}
# A foreign architecture: no ca-certificates, whose postinst starts a
# program per certificate, minutes under emulation (the tests' foreign base
# reaches no https source), and no check by mmdebstrap itself, which needs
# arch-test (the first maintainer script fails all the same without an
# emulator).
opts=(--include=ca-certificates)
[ "$arch" = "$(dpkg --print-architecture)" ] || opts=(--skip=check/qemu)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/aminator-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
mmdebstrap --quiet --architectures="$arch" "${opts[@]}" --variant=minbase --aptopt='Acquire::Retries "3"' "$suite" "$root"
# Leave nothing of the host behind in the image.
printf 'localhost\n' >"$root/etc/hostname"
: >"$root/etc/resolv.conf"
: >"$root/etc/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
mkdir -p "$root/var/lib/apt/lists/partial"
rm -f "$out.tmp"
mkfs.ext4 -q -F -L root -d "$root" "$out.tmp" "$size"
mv "$out.tmp" "$out"
