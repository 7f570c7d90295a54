#!/usr/bin/env bash
# demo.sh: builds aminate, makes a small Debian base image if the local
# cloud has none, and bakes the `hello` package onto it, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
mkdir -p bin
go build -o bin/aminate ./cmd/aminate
A=bin/aminate
base=debian-bookworm-minbase
if ! $A images show "$base" >/dev/null 2>&1; then
  echo "demo: building the base image $base with mmdebstrap (about a minute)" >&2
  img=$(mktemp /var/tmp/aminator-base.XXXXXX.img)
  trap 'rm -f "$img"' EXIT
  TMPDIR=$( [ -w /dev/shm ] && echo /dev/shm || echo /var/tmp ) scripts/make-base.sh "$img" bookworm 1G >/dev/null
  $A images import "$base" "$img" --tag base_ami_version=bookworm-minbase --description "Debian bookworm minbase"
fi
id=$($A -b "$base" hello)
echo "demo: baked $id" >&2
$A images show "$id"
