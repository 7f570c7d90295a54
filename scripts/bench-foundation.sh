#!/usr/bin/env bash
# bench-foundation.sh: how long a bookworm foundation takes, stage by stage:
# the cloud profile (the default: what EC2 launches and a person logs into)
# and the minimal one (what the cloud profile adds), against a naive
# baseline measured in the same run: mmdebstrap into a directory on disk
# with Debian's default initramfs settings, then mkfs, loop mount and cp -a
# into the volume. Prints each, what the cloud profile adds, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
go build -o bin/aminate ./cmd/aminate
work=$(mktemp -d /var/tmp/aminator-bench.XXXXXX)
export AMINATOR_STATE_DIR=$work/state AMINATOR_LOG_DIR=$work/log
# The state directory's store is a mounted filesystem: unmount it first.
trap 'bin/aminate init --unmount >/dev/null 2>&1 || true; umount "$work/mnt" 2>/dev/null || true; [ -n "${loopdev:-}" ] && losetup -d "$loopdev" 2>/dev/null; rm -rf "$work"' EXIT

foundation() { # label, args...
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  bin/aminate foundation "$@" 2>"$work/foundation.err" >/dev/null
  t1=$(date +%s.%N)
  echo "aminate foundation $* ($label, 2 GiB, ext4):"
  sed -n 's/.*msg=timing stage=\("[^"]*"\|[^ ]*\) took=\([^ ]*\).*/  \1 \2/p' "$work/foundation.err"
  sed -n 's/.*tag key=packages value=\([0-9]*\).*/  packages \1/p' "$work/foundation.err"
  printf '  total %.1fs\n' "$(echo "$t1 - $t0" | bc)"
  elapsed=$(echo "$t1 - $t0" | bc)
}
foundation cloud -n bench-cloud -s bench
ours=$elapsed
foundation minimal -n bench-minimal -s bench --profile minimal
minimal=$elapsed
printf 'the cloud profile adds %.1fs to the minimal one\n' "$(echo "$ours - $minimal" | bc)"

t0=$(date +%s.%N)
mkdir -p "$work/base/root"
mmdebstrap --quiet --variant=minbase --include=ca-certificates,linux-image-amd64,systemd-sysv,udev,initramfs-tools bookworm "$work/base/root" >/dev/null 2>&1
t1=$(date +%s.%N)
truncate -s 2G "$work/disk.img"
mkfs.ext4 -q -F "$work/disk.img"
loopdev=$(losetup -f --show "$work/disk.img")
mkdir -p "$work/mnt"
mount "$loopdev" "$work/mnt"
cp -a "$work/base/root/." "$work/mnt/"
umount "$work/mnt"; losetup -d "$loopdev"; loopdev=
cp --sparse=always "$work/disk.img" "$work/snapshot.img"
t2=$(date +%s.%N)
base=$(echo "$t2 - $t0" | bc)
echo "baseline (mmdebstrap to disk, default initramfs, mkfs + mount + cp -a, copy as snapshot):"
printf '  bootstrap %.1fs\n  filesystem and snapshot %.1fs\n  total %.1fs\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$base"
printf 'speed-up of the minimal profile: %.1fx; the cloud profile against the baseline: %.2fx\n' "$(echo "$base / $minimal" | bc -l)" "$(echo "$base / $ours" | bc -l)"
