// Package foundation builds foundation images: a pristine Debian made from
// an empty volume, the first layer of the seed's pipeline (foundation ->
// base -> app). mmdebstrap installs the release into a scratch directory
// (on tmpfs when there is room: about three times faster than disk), the
// tree is cleaned of anything of the host and given an fstab by UUID, and
// mkfs.ext4 -d writes it straight into the volume's root filesystem, with
// no mount and no copy. The volume is then snapshotted and registered like
// any image: a foundation is a second list of steps that reuses the bake's
// (create volume, attach, snapshot, register) around its own (bootstrap,
// configure, partition, make filesystem), one per file (step_*.go).
//
// Layouts: "hybrid" (the cloud profile's default on x86_64) and
// "grub-uefi" (its default on arm64) are Debian's cloud disks booted by
// GRUB (grub.go); "whole" (the minimal profile's default) puts the
// filesystem on the whole device, as Aminator's EBS volumes and the local
// boot test (qemu direct kernel boot) want; "gpt" puts it on partition 1
// of a GPT disk, with no bootloader; "uefi" makes a disk that firmware
// boots by itself: a GPT with an EFI system partition (1) carrying
// systemd-boot, the kernel and its initrd, and the root on partition 2
// (last, so it can grow) — for EC2's uefi boot mode and any UEFI VM.
//
// A foundation for another architecture than the host's (arm64 on an
// x86_64 host) is made the same way: mmdebstrap's foreign-architecture
// mode downloads and unpacks natively and runs only the tree's maintainer
// scripts through qemu-user, which a binfmt_misc handler must start
// (checked before any work); partitions, filesystems and GRUB's images
// are made natively.
package foundation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/undo"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
)

// Result is a built foundation.
type Result struct {
	Image    *plugin.Image `json:"image"`
	Kernel   string        `json:"kernel,omitempty"`
	Packages int           `json:"packages"`
	Timings  []undo.Timing `json:"timings"`
	Duration time.Duration `json:"duration_ns"`
}

// builder is what a foundation's own steps share besides the bake.State:
// the options, the scratch tree and what the bootstrap installed in it.
type builder struct {
	o    Options
	name string
	host host
	log  *slog.Logger
	// work is the scratch directory and tree the root filesystem's tree in it.
	work, tree string
	// uuid is the root filesystem's, espID the EFI system partition's.
	uuid, espID string
	// kernel is the newest installed ("": none), pkgs the manifest.
	kernel string
	pkgs   []plugin.Package
	// seed is a reproducible foundation's hash of its inputs (nil: random
	// identifiers), which the identifiers above and the GPT's derive from.
	seed []byte
}

// Build makes and registers a foundation image.
func Build(ctx context.Context, env *bake.Environment, o Options, log *slog.Logger) (*Result, error) {
	return build(ctx, env, o, log, machine{log: log, epoch: o.SourceDateEpoch})
}

func build(ctx context.Context, env *bake.Environment, o Options, log *slog.Logger, h host) (res *Result, err error) {
	start := time.Now()
	res = &Result{}
	if err := o.validate(); err != nil {
		return res, &bake.UsageError{Err: err}
	}
	if err := checkEmulation(o); err != nil {
		return res, err
	}
	if o.Suffix == "" {
		o.Suffix = naming.Suffix(start)
	}
	if o.Mirror == "" {
		if o.Mirror, err = HostMirror(); err != nil {
			return res, &bake.UsageError{Err: err}
		}
	}
	name := naming.ImageName(o.Name, naming.Fields{Suffix: o.Suffix})
	if err := checkInputs(ctx, env, o, name); err != nil {
		return res, err
	}
	b := &builder{o: o, name: name, host: h, log: log, uuid: newUUID(), espID: strings.ToUpper(newUUID()[:8])}
	s := bake.NewState(env, bake.Request{BakeID: o.BakeID}, log)
	s.Size = int64(o.SizeGiB) << 30
	completed := false // a panic unwinds with err nil: a failure too
	defer func() {
		_, cerr := s.Undo.Finish(ctx, err != nil || !completed, false)
		res.Timings, res.Duration = s.Undo.Timings(), time.Since(start)
		res.Image, res.Kernel, res.Packages = s.Image, b.kernel, len(b.pkgs)
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()

	err = s.Run(ctx,
		scratch{b},
		bootstrap{b},
		configure{b},
		bake.When(bake.Attesting, inventory{b}),
		bake.CreateVolume{Tags: b.volumeTags},
		bake.AttachVolume{},
		bake.When(b.partitioned, partitionDisk{b}),
		bake.When(b.uefi, bootPartition{b}),
		bake.When(b.grub, bootLoaders{b}),
		makeFilesystem{b},
		bake.When(bake.NeedsDiskRead, bake.ReadDiskDigest{}),
		describe{b},
		bake.Group("snapshot and register", bake.Snapshot{}, bake.Register{}),
		bake.When(bake.Attesting, bake.AttestImage{Config: b.settings}),
	)
	completed = err == nil
	return res, err
}

// volumeTags are the work volume's: what it is for, and the bake and host
// that own it, by which gc finds a killed foundation's.
func (b *builder) volumeTags(ctx context.Context, s *bake.State) plugin.Tags {
	host, _ := s.Env.Cloud.Host(ctx)
	return owner.Work(b.o.BakeID, host.InstanceID)
}

// checkEmulation refuses, before any work, a foreign architecture this
// host cannot run: mmdebstrap unpacks and downloads natively, but the
// tree's maintainer scripts run in it, so through a binfmt_misc handler.
func checkEmulation(o Options) error {
	dir := o.BinfmtDir
	if dir == "" {
		dir = binfmt.Dir
	}
	// A job's own /proc does not show the host's binfmt_misc mount: View
	// mounts it for the check.
	if err := binfmt.View(dir, func(d string) error { return binfmt.Check(d, o.Arch) }); err != nil {
		return fmt.Errorf("foundation for %s: %w", o.Arch, err)
	}
	return nil
}
