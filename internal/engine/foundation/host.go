package foundation

import (
	"context"
	"io"
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

// machine is the host a foundation really runs on; epoch is the
// reproducible foundation's (nil: an ordinary one).
type machine struct {
	log   *slog.Logger
	epoch *int64
}

// run runs argv on the host with a minimal environment and, for a
// reproducible foundation, the epoch (reproEnv).
func (m machine) run(ctx context.Context, argv ...string) error {
	return hostRun(ctx, m.log, m.epoch, nil, argv...)
}

// hostRun runs argv on the host with a minimal environment, the epoch's
// (reproEnv) and stdin.
func hostRun(ctx context.Context, log *slog.Logger, epoch *int64, stdin io.Reader, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}, reproEnv(epoch)...)
	cmd.Stdin = stdin
	return logging.Run(ctx, log, cmd, nil)
}

func (m machine) Bootstrap(ctx context.Context, o Options, work, tree string) error {
	return runBootstrap(ctx, o, work, tree, m.log)
}

func (m machine) Partition(ctx context.Context, dev, table string) error {
	return hostRun(ctx, m.log, m.epoch, strings.NewReader(table), "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", dev)
}

func (m machine) MakeESP(ctx context.Context, dev, tree, kernel, rootUUID, espID, work string) error {
	return makeESP(ctx, m, dev, tree, kernel, rootUUID, espID, work)
}

func (m machine) InstallGRUB(ctx context.Context, o Options, dev, tree, rootUUID, espID, work string) error {
	return installGRUB(ctx, m, dev, tree, rootUUID, espID, work, o.Arch, o.Layout)
}

func (m machine) MakeFS(ctx context.Context, dev string, part int, fstype, uuid, tree, mnt string) error {
	target, release, err := partition.Open(ctx, dev, part)
	if err != nil {
		return err
	}
	defer release()
	return makeFS(ctx, m, fstype, uuid, tree, target, mnt)
}
