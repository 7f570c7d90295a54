#!/usr/bin/env bash
# demo.sh: the seed's whole pipeline on the local cloud, as root:
#   foundation (a bootable Debian bookworm from an empty volume)
#   -> base (a meta package baked onto it, promoted to the release channel)
#   -> app (a package baked against base:release, then launched under qemu
#      as EC2 would launch it: its firmware boots the disk's GRUB, cloud-init
#      reads the instance metadata, and ssh logs in with the test's key)
# and prints each image id, the app's lineage and the ssh command that worked.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
mkdir -p bin
go build -o bin/aminate ./cmd/aminate
A=bin/aminate
work=$(mktemp -d /var/tmp/aminator-demo.XXXXXX)
# The first command sets up the reflink store (a filesystem in a loop file
# under /var/lib/aminator, mounted on its data/); it stays mounted between
# commands, and the demo leaves no mount behind: the next aminate command
# mounts it again.
finish() {
  [ -x "$A" ] && "$A" init --unmount || true
  rm -rf "$work"
}
trap finish EXIT
suffix=$(date -u +%Y%m%d%H%M%S)

# Two small packages, built on the spot: a base meta package that pulls in
# tools from the mirror, and an application.
mkpkg() { # name version depends file-content
  local root="$work/$1"
  mkdir -p "$root/DEBIAN" "$root/opt/$1"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: demo <demo@example.invalid>\nDescription: aminator demo package\n' "$1" "$2" >"$root/DEBIAN/control"
  [ -n "$3" ] && printf 'Depends: %s\n' "$3" >>"$root/DEBIAN/control"
  printf '%s\n' "$4" >"$root/opt/$1/README"
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$root" "$work/$1_$2_all.deb" >/dev/null
  echo "$work/$1_$2_all.deb"
}
meta=$(mkpkg demo-base 1.0 "curl, less" "the demo base platform")
app=$(mkpkg demo-app 1.0-1 "" "the demo application")

echo "== foundation" >&2
foundation=$($A foundation -n demo-debian-bookworm -s "$suffix")
echo "== base" >&2
base=$($A -B "$foundation" -n demo-base -s "$suffix" "$meta")
$A images promote "$base" --label release >&2
echo "== app, baked against demo-base:release" >&2
appimg=$($A -b demo-base:release -s "$suffix" "$app")
echo "== app, launched like EC2 and logged into over ssh" >&2
launched=$($A test "$appimg")

echo
echo "foundation: $foundation"
echo "base:       $base"
echo "app:        $appimg"
echo
$A images show --lineage "$appimg"
echo
$A images show "$appimg"
echo
echo "$launched"
