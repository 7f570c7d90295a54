// Package bake runs one bake: the seed's five operations (create volume,
// attach it, provision the package in a chroot, snapshot, register) on the
// plugins an environment names, each undone in reverse when a later one
// fails. It has no command-line concerns, so a bake service can call Run
// the same way the CLI does.
package bake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pipeline"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Request is what to bake.
type Request struct {
	Package  string
	BaseID   string
	BaseName string
	// BaseLabel picks the newest image of family BaseName with this
	// channel label (also written BaseName "family:label").
	BaseLabel       string
	Name            string
	Suffix          string
	Creator         string
	VMType          string
	Arch            string
	ENA             bool
	SriovNet        bool
	RootVolumeGiB   int
	Partition       int
	VolumeType      string
	RegisterType    string
	Interactive     bool
	PreserveOnError bool
	Tags            map[string]string
	BootMode        string
	TPMSupport      bool
	IMDSv2Required  bool
	// Distribution: copies, sharing, deprecation after registering.
	Distribution plugin.Distribution
	// VolumeID and BlockDevice: an external pool's volume, a given device.
	VolumeID, BlockDevice string
	// DryRun resolves and checks everything that needs no volume, then stops.
	DryRun bool
	// BakeID names the bake (log file, volume tag); made up if empty.
	BakeID string
}

// RequestFromConfig fills a request from the merged configuration.
func RequestFromConfig(c config.Context, pkg string) Request {
	return Request{
		Package: pkg, BaseID: c.BaseAMIID, BaseName: c.BaseAMIName, BaseLabel: c.Label, Name: c.Name, Suffix: c.Suffix,
		Creator: c.Creator, VMType: c.VMType, Arch: c.Arch, ENA: c.ENANetworking, SriovNet: c.EnhancedNetworking,
		RootVolumeGiB: c.RootVolumeSize, Partition: c.Partition, VolumeType: c.ProvisionerEBSType,
		RegisterType: c.RegisterEBSType, Interactive: c.Interactive, PreserveOnError: c.PreserveOnError, Tags: c.Tags,
		BootMode: c.BootMode, TPMSupport: c.TPMSupport, IMDSv2Required: c.IMDSv2Required,
		VolumeID: c.VolumeID, BlockDevice: c.BlockDevice,
		Distribution: plugin.Distribution{CopyTo: c.CopyTo, ShareWith: c.ShareWith, OrgARNs: c.ShareOrgs, OUARNs: c.ShareOUs,
			DeprecateAt: deprecateAt(c.DeprecateAt), KMSKeys: c.CopyKMSKeys},
	}
}

func deprecateAt(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s) // validated by config
	return t
}

// Result is a finished bake.
type Result struct {
	BakeID   string              `json:"bake_id"`
	Image    *plugin.Image       `json:"image"`
	Package  *plugin.PackageInfo `json:"package"`
	Base     *plugin.Image       `json:"base"`
	Timings  []pipeline.Timing   `json:"timings"`
	Duration time.Duration       `json:"duration_ns"`
	// Preserved lists how to remove what --preserve-on-error kept.
	Preserved []string `json:"preserved,omitempty"`
	// Copies are the image's copies in other regions.
	Copies []plugin.RegionImage `json:"copies,omitempty"`
	// Plan is what a dry run found.
	Plan *Plan `json:"plan,omitempty"`
}

// Plan is what a bake would do.
type Plan struct {
	Package     plugin.PackageRef `json:"package"`
	VolumeBytes int64             `json:"volume_bytes"`
	Partition   int               `json:"partition"`
	// Name is the image name, checked free, when it is known without a
	// volume: given with -n, or made from a package file's or a given
	// version. A repository package's is known once the bake resolves it.
	Name string `json:"name,omitempty"`
}

// UsageError is a request that is wrong before anything is done.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// NewBakeID makes a bake id: time plus randomness.
func NewBakeID(now time.Time) string {
	return "bake-" + now.UTC().Format("20060102T150405") + "-" + strings.TrimPrefix(ids.New("x"), "x-")[:6]
}

// Run performs one bake. The returned Result is non-nil even on failure
// (it carries the timings and what was preserved). Everything that can be
// checked without a volume is checked before one is made: the request,
// the base, the tags against the cloud's limits, and the image name
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
	p := pipeline.New(log)
	var chrootHandle plugin.Chroot
	// A panic unwinds through here with err still nil: it is a failure too.
	completed := false
	defer func() {
		failed := err != nil || !completed
		if failed && req.PreserveOnError && chrootHandle != nil {
			chrootHandle.Preserve()
		}
		hints, cerr := p.Finish(ctx, failed, req.PreserveOnError)
		res.Preserved = hints
		res.Timings = p.Timings()
		res.Duration = time.Since(start)
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()

	pl, err := plan(ctx, p, env, &req, ref, log)
	res.Base = pl.base
	if err != nil {
		return res, err
	}
	if req.DryRun {
		res.Plan = &Plan{Package: ref, VolumeBytes: pl.size, Partition: req.Partition, Name: pl.name}
		log.Info("dry run: nothing was created", "base", pl.base.ID, "volume_bytes", pl.size, "name", pl.name)
		completed = true
		return res, nil
	}
	vol, dev, err := prepareVolume(ctx, p, env, req, pl, log)
	if err != nil {
		return res, err
	}
	mnt := filepath.Join(env.StateDir, "mnt", vol.ID)
	chrootHandle, unmount, err := mountVolume(ctx, p, env, req, pl, dev, mnt)
	if err != nil {
		return res, err
	}
	log.Info("chroot ready", "path", mnt)
	info, name, err := provision(ctx, p, env, chrootHandle, req, pl, log)
	res.Package = info
	if err != nil {
		return res, err
	}
	manifest, err := customize(ctx, p, env, chrootHandle, req, pl, info, name, log)
	if err != nil {
		return res, err
	}
	if err := p.Stage(ctx, "unmount", unmount.Now); err != nil {
		return res, err
	}
	image, err := register(ctx, p, env, req, pl, vol, info, name, manifest, unmount)
	if err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bake cancelled: %w", context.Cause(ctx))
	}
	res.Image = image
	log.Info("image registered", "id", image.ID, "name", image.Name)
	completed = true
	if !req.Distribution.Empty() {
		if err := p.Stage(ctx, "distribute", func(ctx context.Context) error {
			res.Copies, err = env.Cloud.(plugin.Distributor).Distribute(ctx, image, req.Distribution)
			return err
		}); err != nil {
			return res, err
		}
		for _, c := range res.Copies {
			log.Info("image copied", "region", c.Region, "id", c.ImageID)
		}
	}
	return res, nil
}
