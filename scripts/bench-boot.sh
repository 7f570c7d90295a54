#!/usr/bin/env bash
# bench-boot.sh: how long a launch like EC2's takes to a working ssh login,
# in each boot mode, against the direct-kernel boot of the same image to
# multi-user.target (the boot test before issue 18), measured in the same
# run on a cloud foundation built here. Accelerator: auto (this machine's
# KVM is probed first; the figures say which ran).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
go build -o bin/aminate ./cmd/aminate
work=$(mktemp -d /var/tmp/aminator-bench.XXXXXX)
export AMINATOR_STATE_DIR=$work/state AMINATOR_LOG_DIR=$work/log
# The state directory's store is a mounted filesystem: unmount it first.
trap 'bin/aminate init --unmount >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
id=$(bin/aminate foundation -n bench-boot -s bench 2>"$work/foundation.err")
launch() { # label, args...
  local label=$1; shift
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(bin/aminate test --output json "$@" "$id" 2>"$work/test.err")
  t1=$(date +%s.%N)
  printf '%-40s %6.1fs  %s\n' "$label" "$(echo "$t1 - $t0" | bc)" \
    "$(printf '%s' "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["accel"], " ".join("%s@%.0fs" % (s["name"], s["after_ns"]/1e9) for s in r.get("stages") or []))')"
  elapsed=$(echo "$t1 - $t0" | bc)
}
launch "like EC2, uefi (OVMF), to ssh login" --test-boot-mode uefi
uefi=$elapsed
launch "like EC2, legacy-bios (SeaBIOS), to ssh" --test-boot-mode legacy-bios
bios=$elapsed
launch "direct kernel boot, to the marker" --like kernel
kernel=$elapsed
printf 'like EC2 / direct kernel boot: uefi %.2fx, legacy-bios %.2fx\n' "$(echo "$uefi / $kernel" | bc -l)" "$(echo "$bios / $kernel" | bc -l)"
