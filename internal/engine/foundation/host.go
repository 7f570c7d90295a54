package foundation

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/sys/partition"
)

// host is what a foundation runs on this machine, as root: mmdebstrap,
// sfdisk, mkfs and mtools. The unit tests fake it, so that a foundation's
// steps run as an ordinary user.
type host interface {
	// Bootstrap installs the release into tree, with work as scratch.
	Bootstrap(ctx context.Context, o Options, work, tree string) error
	// Partition writes a partition table (sfdisk's input) to dev.
	Partition(ctx context.Context, dev, table string) error
	// MakeESP makes the EFI system partition, partition 1 of dev, from
	// the tree's boot loader and kernel.
	MakeESP(ctx context.Context, dev, tree, kernel, rootUUID, espID, work string) error
	// InstallGRUB makes a GRUB layout's loaders (grub.go) on dev from the
	// tree's GRUB, for the architecture and layout of o.
	InstallGRUB(ctx context.Context, o Options, dev, tree, rootUUID, espID, work string) error
	// MakeFS makes the root filesystem on partition part of dev (0: the
	// whole device) from tree; mnt is scratch for a filesystem that must
	// be mounted to be filled.
	MakeFS(ctx context.Context, dev string, part int, fstype, uuid, tree, mnt string) error
}

// machine is the host a foundation really runs on.
type machine struct{ log *slog.Logger }

func (m machine) Bootstrap(ctx context.Context, o Options, work, tree string) error {
	return runBootstrap(ctx, o, work, tree, m.log)
}

func (m machine) Partition(ctx context.Context, dev, table string) error {
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev)
	cmd.Stdin = strings.NewReader(table)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return logging.Run(ctx, m.log, cmd, nil)
}

func (m machine) MakeESP(ctx context.Context, dev, tree, kernel, rootUUID, espID, work string) error {
	return makeESP(ctx, dev, tree, kernel, rootUUID, espID, work, m.log)
}

func (m machine) InstallGRUB(ctx context.Context, o Options, dev, tree, rootUUID, espID, work string) error {
	return installGRUB(ctx, dev, tree, rootUUID, espID, work, o.Arch, o.Layout, m.log)
}

func (m machine) MakeFS(ctx context.Context, dev string, part int, fstype, uuid, tree, mnt string) error {
	target, release, err := partition.Open(ctx, dev, part)
	if err != nil {
		return err
	}
	defer release()
	return makeFS(ctx, fstype, uuid, tree, target, mnt, m.log)
}
