#!/usr/bin/env bash
# demo.sh: the seed's whole pipeline on the local cloud, as root, for
# x86_64 and arm64 (Graviton) alike:
#   foundation (a bootable Debian bookworm from an empty volume)
#   -> base (a meta package baked onto it, promoted to the release channel)
#   -> app (a package baked against base:release, then launched under qemu
#      as EC2 would launch it: its firmware boots the disk's GRUB, cloud-init
#      reads the instance metadata, and ssh logs in with the test's key)
# and prints each image id, the apps' lineage and the ssh commands that worked.
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

# Both architectures: a foundation of each (arm64's maintainer scripts run
# under qemu-user, registered by setup.sh), then the base and the app baked
# for both from one request each (-b FAMILY --arch x86_64,arm64: the newest
# image of each architecture), and both apps launched as EC2 launches an
# x86_64 instance and a Graviton one.
echo "== foundations (x86_64, arm64)" >&2
foundation=$($A foundation -n demo-debian-bookworm -s "$suffix")
foundation_arm64=$($A foundation --arch arm64 -n demo-debian-bookworm -s "$suffix-arm64")
echo "== base, for both architectures" >&2
bases=$($A --arch x86_64,arm64 -b demo-debian-bookworm -n demo-base -s "$suffix" "$meta")
for b in $(echo "$bases" | awk '{print $2}'); do $A images promote "$b" --label release >&2; done
echo "== app, baked against demo-base:release for both architectures" >&2
apps=$($A --arch x86_64,arm64 -b demo-base:release -s "$suffix" "$app")
app_x86=$(echo "$apps" | awk '$1 == "x86_64" {print $2}')
app_arm64=$(echo "$apps" | awk '$1 == "arm64" {print $2}')
echo "== apps, launched like EC2 (x86_64, then Graviton) and logged into over ssh" >&2
launched=$($A test "$app_x86")
launched_arm64=$($A test "$app_arm64")
echo "== apps' provenance, verified with their lineage (signature, disk, SBOMs)" >&2
verified=$($A verify "$app_x86")
verified_arm64=$($A verify "$app_arm64")

echo
echo "foundations: $foundation (x86_64), $foundation_arm64 (arm64)"
echo "bases:"
echo "$bases" | sed 's/^/  /'
echo "apps:"
echo "$apps" | sed 's/^/  /'
echo
$A images show --lineage "$app_x86"
echo
$A images show --lineage "$app_arm64"
echo
$A images show "$app_arm64"
echo
echo "$launched"
echo "$launched_arm64"
echo
echo "$verified"
echo "$verified_arm64"
echo
echo "packages in the x86_64 app's SBOM: $($A images sbom "$app_x86" --format cyclonedx | grep -o '"purl": *"pkg:' | wc -l)"
