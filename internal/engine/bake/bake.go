// Package bake runs one bake: the seed's five operations (create volume,
// attach it, provision the package in a chroot, snapshot, register) on the
// plugins an environment names. A bake is a list of typed steps, one per
// file (step_*.go), that share a State; each step registers the undo of
// what it makes, so a failure anywhere undoes exactly what was done, in
// reverse. Package foundation builds its images with a second list that
// reuses the shared steps. It has no command-line concerns, so a bake
// service can call Run the same way the CLI does.
package bake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// Run performs one bake. The returned Result is non-nil even on failure
// (it carries the timings and what was preserved). Everything that can be
// checked without a volume is checked before one is made: the request,
// the base, the tags against the cloud's limits, the package's
// architecture against the base's, that this host runs the base's
// programs (natively or emulated), and the image name
// whenever the package says it without being installed.
func Run(ctx context.Context, env *Environment, req Request, log *slog.Logger) (res *Result, err error) {
	start := time.Now()
	if req.BakeID == "" {
		req.BakeID = NewBakeID(start)
	}
	res = &Result{BakeID: req.BakeID}
	ref, err := checkRequest(env, &req)
	if err != nil {
		return res, err
	}
	if req.Suffix == "" {
		req.Suffix = naming.Suffix(start)
	}
	s := NewState(env, req, log)
	s.Ref = ref
	// A panic unwinds through here with err still nil: it is a failure too.
	completed := false
	defer func() {
		if cerr := finish(ctx, s, res, err != nil || !completed, start); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()

	// Plan: what needs no volume is found and checked before one is made.
	if err := s.Run(ctx,
		resolveBase{},
		sizeVolume{},
		checkTagLimits{},
		When(inspectable, inspectPackage{}),
		checkPackageArch{},
		checkEmulation{},
		checkPlannedName{},
	); err != nil {
		return res, err
	}
	if s.Req.DryRun {
		res.Plan = &Plan{Package: ref, VolumeBytes: s.Size, Partition: s.Req.Partition, Name: s.Name}
		log.Info("dry run: nothing was created", "base", s.Base.ID, "volume_bytes", s.Size, "name", s.Name)
		completed = true
		return res, nil
	}

	// Bake: a volume from the base, the package installed in it, an image.
	if err := s.Run(ctx,
		When(adopting, adoptVolume{}),
		When(creating, CreateVolume{Tags: workVolumeTags}),
		When(detached, AttachVolume{}),
		When(growing, growFilesystem{}),
		mount{},
		When(growing, growMounted{}),
		When(resolvable, resolvePackage{}),
		provision{},
		scripts{},
		When(interactive, shell{}),
		manifest{},
		cleanImage{},
		When(Attesting, readInventory{}),
		unmount{},
		When(NeedsDiskRead, ReadDiskDigest{}),
		describeImage{},
		Group("snapshot and register", Snapshot{}, Register{}),
		When(Attesting, AttestImage{}),
	); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bake cancelled: %w", context.Cause(ctx))
	}
	res.Image, completed = s.Image, true
	log.Info("image registered", "id", s.Image.ID, "name", s.Image.Name)

	// Distribute: copies and sharing; a failure still undoes the image.
	return res, s.Run(ctx, When(distributing, distribute{}))
}

// The conditions of the optional steps.
func adopting(s *State) bool     { return s.Req.VolumeID != "" }
func creating(s *State) bool     { return s.Req.VolumeID == "" }
func detached(s *State) bool     { return s.Device == "" }
func growing(s *State) bool      { return s.Grow }
func interactive(s *State) bool  { return s.Req.Interactive }
func distributing(s *State) bool { return !s.Req.Distribution.Empty() }

// finish keeps what --preserve-on-error keeps, runs the undo stack and
// fills in the result.
func finish(ctx context.Context, s *State, res *Result, failed bool, start time.Time) error {
	if failed && s.Req.PreserveOnError && s.Chroot != nil {
		s.Chroot.Preserve()
	}
	hints, err := s.Undo.Finish(ctx, failed, s.Req.PreserveOnError)
	res.Preserved = hints
	res.Timings = s.Undo.Timings()
	res.Duration = time.Since(start)
	res.Base, res.Package, res.Copies = s.Base, s.Package, s.Copies
	return err
}

// workVolumeTags are a bake's volume's tags: what it is for and made of,
// and the bake and host that own it, by which gc finds a killed bake's.
func workVolumeTags(ctx context.Context, s *State) plugin.Tags {
	host, _ := s.Env.Cloud.Host(ctx)
	return plugin.Tags{
		owner.Purpose: owner.PurposeWork, owner.Bake: s.Req.BakeID, owner.Host: host.InstanceID,
		"status": "busy", "ami": s.Base.ID, "ami-name": s.Base.Name, "arch": s.Arch,
	}
}
