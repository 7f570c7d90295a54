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
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pipeline"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Environment is one instantiated plugin of each kind.
type Environment struct {
	Name        string
	Cloud       plugin.Cloud
	BlockDevice plugin.BlockDevice
	Volume      plugin.Volumes
	Distro      plugin.Distro
	Provisioner plugin.Provisioner
	Finalizer   plugin.Finalizer
	StateDir    string
}

// Close releases what the plugins hold (the cloud's database).
func (e *Environment) Close() error {
	if c, ok := e.Cloud.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// NewEnvironment builds the plugins of the configured environment, in
// order, each given the ones before it.
func NewEnvironment(cfg *config.Config, log *slog.Logger) (*Environment, error) {
	name := cfg.Context.Environment
	spec, ok := cfg.Environments[name]
	if !ok {
		return nil, fmt.Errorf("no environment %q", name)
	}
	deps := plugin.Deps{Logger: log, StateDir: cfg.StateDir, LockDir: cfg.LockDir, Region: cfg.Context.Region}
	env := &Environment{Name: name, StateDir: cfg.StateDir}
	for _, kind := range plugin.Kinds {
		pname := spec[kind]
		reg, _ := plugin.Lookup(kind, pname)
		pc, err := cfg.PluginConfig(kind, pname)
		if err != nil {
			env.Close()
			return nil, err
		}
		inst, err := reg.New(pc, deps)
		if err != nil {
			env.Close()
			return nil, fmt.Errorf("%s plugin %s: %w", kind, pname, err)
		}
		bad := func() (*Environment, error) {
			env.Close()
			return nil, fmt.Errorf("%s plugin %s does not implement the %s interface", kind, pname, kind)
		}
		switch kind {
		case plugin.KindCloud:
			if env.Cloud, ok = inst.(plugin.Cloud); !ok {
				return bad()
			}
			deps.Cloud = env.Cloud
		case plugin.KindBlockDevice:
			if env.BlockDevice, ok = inst.(plugin.BlockDevice); !ok {
				return bad()
			}
			deps.BlockDevice = env.BlockDevice
		case plugin.KindVolume:
			if env.Volume, ok = inst.(plugin.Volumes); !ok {
				return bad()
			}
		case plugin.KindDistro:
			if env.Distro, ok = inst.(plugin.Distro); !ok {
				return bad()
			}
		case plugin.KindProvisioner:
			if env.Provisioner, ok = inst.(plugin.Provisioner); !ok {
				return bad()
			}
		case plugin.KindFinalizer:
			if env.Finalizer, ok = inst.(plugin.Finalizer); !ok {
				return bad()
			}
		}
	}
	return env, nil
}

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
	// Name is the image name when it does not depend on the package's version.
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
// (it carries the timings and what was preserved).
func Run(ctx context.Context, env *Environment, req Request, log *slog.Logger) (res *Result, err error) {
	start := time.Now()
	if req.BakeID == "" {
		req.BakeID = NewBakeID(start)
	}
	res = &Result{BakeID: req.BakeID}
	if req.BaseID == "" && req.BaseName == "" {
		return res, &UsageError{errors.New("no base image: give -B ID or -b NAME")}
	}
	if req.BaseID != "" && !ids.Valid("ami", req.BaseID) {
		return res, &UsageError{fmt.Errorf("base image id %q does not look like ami-<hex>", req.BaseID)}
	}
	ref, err := env.Provisioner.Parse(req.Package)
	if err != nil {
		return res, &UsageError{err}
	}
	distributor, canDistribute := env.Cloud.(plugin.Distributor)
	if !req.Distribution.Empty() && !canDistribute {
		return res, &UsageError{fmt.Errorf("environment %q cannot copy, share or deprecate images (--copy-to, --share-with, --deprecate-at)", env.Name)}
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

	family, label := channels.SplitRef(req.BaseName)
	if req.BaseLabel != "" {
		if label != "" && label != req.BaseLabel {
			return res, &UsageError{fmt.Errorf("-b %s and --label %s disagree", req.BaseName, req.BaseLabel)}
		}
		label = req.BaseLabel
	}
	if label != "" && req.BaseID != "" {
		return res, &UsageError{errors.New("--label resolves a base by name; give -b NAME, not -B")}
	}
	var base *plugin.Image
	if err := p.Stage(ctx, "resolve base", func(ctx context.Context) error {
		if label != "" {
			base, err = channels.Resolve(ctx, env.Cloud, family, label)
			return err
		}
		base, err = env.Cloud.Image(ctx, plugin.ImageQuery{ID: req.BaseID, Name: req.BaseName})
		return err
	}); err != nil {
		return res, err
	}
	res.Base = base
	if label != "" {
		log.Info("base image resolved", "family", family, "label", label, "id", base.ID, "name", base.Name)
	} else {
		log.Info("base image", "id", base.ID, "name", base.Name)
	}
	root := base.Root()
	if root == nil || root.SnapshotID == "" {
		return res, fmt.Errorf("base image %s has no root snapshot", base.ID)
	}
	if req.Partition == 0 {
		if n, err := strconv.Atoi(base.Tags["root_partition"]); err == nil && n > 0 {
			req.Partition = n
			log.Info("root filesystem on partition, as the base image records", "partition", n)
		}
	}
	snap, err := env.Cloud.Snapshot(ctx, root.SnapshotID)
	if err != nil {
		return res, fmt.Errorf("base image %s: %w", base.ID, err)
	}
	size := snap.SizeBytes
	grow := false
	if req.RootVolumeGiB > 0 {
		want := int64(req.RootVolumeGiB) << 30
		if want < snap.SizeBytes {
			return res, &UsageError{fmt.Errorf("--root-volume-size %d GiB is smaller than the base image's root volume (%d bytes)", req.RootVolumeGiB, snap.SizeBytes)}
		}
		grow = want > snap.SizeBytes
		size = want
	}
	arch := req.Arch
	if arch == "" {
		arch = base.Architecture
	}
	if arch == "" { // some APIs (moto) leave it out: assume this host's
		arch = map[string]string{"amd64": "x86_64", "arm64": "arm64", "386": "i386"}[runtime.GOARCH]
	}
	early := ""
	if req.Name != "" {
		early = naming.ImageName(req.Name, naming.Fields{Suffix: req.Suffix})
		if err := checkFree(ctx, env.Cloud, early); err != nil {
			return res, err
		}
	}

	if req.DryRun {
		res.Plan = &Plan{Package: ref, VolumeBytes: size, Partition: req.Partition, Name: early}
		log.Info("dry run: nothing was created", "base", base.ID, "volume_bytes", size, "name", early)
		completed = true
		return res, nil
	}

	var vol *plugin.Volume
	var dev string
	if req.VolumeID != "" {
		// An external pool's volume (-V): used, never deleted.
		if err := p.Stage(ctx, "adopt volume", func(ctx context.Context) error {
			vol, dev, err = env.Volume.Adopt(ctx, req.VolumeID)
			return err
		}); err != nil {
			return res, err
		}
		log.Info("using the given volume", "volume", vol.ID, "device", dev)
		if vol.SizeBytes < size {
			return res, fmt.Errorf("volume %s (%d bytes) is smaller than the base image's root (%d bytes)", vol.ID, vol.SizeBytes, size)
		}
		size, grow = vol.SizeBytes, grow && vol.SizeBytes > snap.SizeBytes
	} else {
		if err := p.Stage(ctx, "create volume", func(ctx context.Context) error {
			host, _ := env.Cloud.Host(ctx)
			vol, err = env.Volume.Create(ctx, base, size, plugin.Tags{
				"purpose": "amination", "status": "busy", "ami": base.ID, "ami-name": base.Name, "arch": arch, "bake": req.BakeID,
				"host": host.InstanceID,
			})
			return err
		}); err != nil {
			return res, err
		}
		log.Info("volume created", "volume", vol.ID, "bytes", vol.SizeBytes)
		p.Release("delete volume "+vol.ID, "aminate volumes rm "+vol.ID, func(ctx context.Context) error { return env.Volume.Delete(ctx, vol) })
	}

	if dev == "" {
		if err := p.Stage(ctx, "attach volume", func(ctx context.Context) error {
			dev, err = env.Volume.Attach(ctx, vol, req.BlockDevice)
			return err
		}); err != nil {
			return res, err
		}
		log.Info("volume attached", "device", dev)
		p.Release("detach volume "+vol.ID, "the volume is detached once it is unmounted", func(ctx context.Context) error { return env.Volume.Detach(ctx, vol) })
	}

	if grow {
		if err := p.Stage(ctx, "grow filesystem", func(ctx context.Context) error { return env.Volume.Grow(ctx, dev, req.Partition) }); err != nil {
			return res, err
		}
	}

	mnt := filepath.Join(env.StateDir, "mnt", vol.ID)
	var unmount *pipeline.Undo
	if err := p.Stage(ctx, "mount", func(ctx context.Context) error {
		c, err := env.Distro.Enter(ctx, plugin.MountOptions{Device: dev, Partition: req.Partition, MountPoint: mnt})
		if err != nil {
			return err
		}
		chrootHandle = c
		unmount = p.Release("unmount "+mnt, "umount -R "+mnt, c.Close)
		return nil
	}); err != nil {
		return res, err
	}
	if grow {
		if err := p.Stage(ctx, "grow mounted filesystem", func(ctx context.Context) error { return env.Volume.GrowMounted(ctx, mnt) }); err != nil {
			return res, err
		}
	}
	log.Info("chroot ready", "path", mnt)

	var info *plugin.PackageInfo
	if err := p.Stage(ctx, "provision", func(ctx context.Context) error {
		info, err = env.Provisioner.Provision(ctx, chrootHandle, ref)
		return err
	}); err != nil {
		return res, err
	}
	res.Package = info
	log.Info("package installed", "name", info.Name, "version", info.FullVersion, "arch", info.Arch)

	fields := naming.Fields{Name: info.Name, Version: info.Version, Release: info.Release, Arch: arch, Suffix: req.Suffix, StoreType: env.Finalizer.StoreType()}
	name := naming.ImageName(req.Name, fields)
	if early == "" {
		if err := checkFree(ctx, env.Cloud, name); err != nil {
			return res, err
		}
	}
	host, _ := env.Cloud.Host(ctx)
	scriptEnv := map[string]string{
		"AMINATOR_PACKAGE": info.Name, "AMINATOR_ENVIRONMENT": env.Name, "AMINATOR_BASE_AMI_ID": base.ID,
		"AMINATOR_BASE_AMI_NAME": base.Name, "AMINATOR_REGION": host.Region, "AMINATOR_AMI_NAME": name,
		"AMINATOR_AMI_SUFFIX": req.Suffix, "AMINATOR_CREATOR": req.Creator, "AMINATOR_VM_TYPE": req.VMType,
		"AMINATOR_STORE_TYPE": env.Finalizer.StoreType(),
	}
	if err := p.Stage(ctx, "scripts", func(ctx context.Context) error {
		return runScripts(ctx, chrootHandle, scriptEnv, log)
	}); err != nil {
		return res, err
	}
	if req.Interactive {
		if err := chrootHandle.Run(ctx, plugin.Run{Argv: []string{"/bin/sh", "-l"}, Env: scriptEnv, Interactive: true}); err != nil {
			log.Warn("interactive shell ended with an error", "err", err)
		}
	}
	var manifest []plugin.Package
	if err := p.Stage(ctx, "manifest", func(ctx context.Context) error {
		manifest, err = env.Provisioner.Manifest(ctx, chrootHandle)
		return err
	}); err != nil {
		return res, err
	}
	if err := p.Stage(ctx, "unmount", unmount.Now); err != nil {
		return res, err
	}

	// base_ami_version names the base a lineage is built on: apps copy their
	// base's, and a base (baked on a foundation) starts its own from its
	// meta package's version.
	baseVersion := base.Tags["base_ami_version"]
	if baseVersion == "" {
		baseVersion = base.Tags["appversion"]
	}
	ownBaseVersion := baseVersion
	if channels.ChildRole(base) == channels.RoleBase {
		ownBaseVersion = naming.AppVersion(fields)
	}
	now := time.Now()
	tags := plugin.Tags{}
	for k, v := range req.Tags {
		tags[k] = v
	}
	// Channel labels move only through images promote, never with a bake.
	delete(tags, channels.TagChannel)
	familyName := req.Name
	if familyName == "" {
		familyName = info.Name
	}
	for k, v := range map[string]string{
		"creator": req.Creator, "appversion": naming.AppVersion(fields), "base_ami_id": base.ID,
		"base_ami_name": base.Name, "base_ami_version": ownBaseVersion,
		channels.TagFamily: familyName, channels.TagRole: channels.ChildRole(base), "lineage": channels.ChildLineage(base),
	} {
		tags[k] = v
	}
	if label != "" {
		tags["base_ami_label"] = family + ":" + label
	}
	if req.Partition > 0 {
		tags["root_partition"] = strconv.Itoa(req.Partition)
	}
	if b := base.Tags["boot"]; b != "" { // how the disk boots (uefi) passes down the lineage
		tags["boot"] = b
	}
	snapTags := plugin.Tags{}
	for k, v := range tags {
		snapTags[k] = v
	}
	tags["creation_time"] = naming.CreationTime(now)
	volType := req.RegisterType
	if volType == "" {
		volType = root.VolumeType
	}
	bootMode := req.BootMode
	if bootMode == "" {
		bootMode = base.BootMode
	}
	if bootMode == "" && base.Tags["boot"] == "uefi" {
		bootMode = "uefi"
	}
	var kernelID, ramdiskID string
	if req.VMType == "paravirtual" {
		kernelID, ramdiskID = base.KernelID, base.RamdiskID
	}
	snapTags["bake"] = req.BakeID
	if host, err := env.Cloud.Host(ctx); err == nil {
		snapTags["host"] = host.InstanceID
	}
	var image *plugin.Image
	if err := p.Stage(ctx, "snapshot and register", func(ctx context.Context) error {
		image, err = env.Finalizer.Finalize(ctx, plugin.FinalizeRequest{
			Volume: vol, Unmount: unmount.Now, Base: base, SizeBytes: size, VolumeType: volType,
			SnapshotTags: snapTags,
			OnFailure:    func(name string, fn func(context.Context) error) { p.Rollback(name, fn) },
			Image: plugin.ImageRequest{
				Name: name, Description: naming.Description(info.Name+"-"+info.FullVersion, arch, base.Name, base.ID, baseVersion),
				Architecture: arch, VirtualizationType: req.VMType, EnaSupport: req.ENA, SriovNetSupport: req.SriovNet, Tags: tags,
				Packages: manifest, BootMode: bootMode, TPMSupport: req.TPMSupport, IMDSv2Required: req.IMDSv2Required,
				KernelID: kernelID, RamdiskID: ramdiskID,
			},
		})
		return err
	}); err != nil {
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
			res.Copies, err = distributor.Distribute(ctx, image, req.Distribution)
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

func checkFree(ctx context.Context, c plugin.Cloud, name string) error {
	im, err := c.Image(ctx, plugin.ImageQuery{Name: name})
	if err == nil {
		return fmt.Errorf("an image named %q already exists (%s); pick another name with -n or -s: %w", name, im.ID, plugin.ErrExists)
	}
	if !errors.Is(err, plugin.ErrNotFound) {
		return err
	}
	return nil
}

// runScripts runs every executable /var/local/*.sh in the image, sorted,
// with the AMINATOR_* environment; the first failure fails the bake.
func runScripts(ctx context.Context, c plugin.Chroot, env map[string]string, log *slog.Logger) error {
	entries, err := fs.ReadDir(c.Root().FS(), "var/local")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list /var/local in the image: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sh") {
			continue
		}
		st, err := c.Root().Stat("var/local/" + e.Name())
		if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		log.Info("running image script", "script", "/var/local/"+n)
		if err := c.Run(ctx, plugin.Run{Argv: []string{"/var/local/" + n}, Env: env}); err != nil {
			return fmt.Errorf("script /var/local/%s: %w", n, err)
		}
	}
	return nil
}
