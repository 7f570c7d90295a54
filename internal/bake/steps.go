package bake

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pipeline"
	"github.com/aminator-go/aminator/internal/plugin"
)

// prepareVolume adopts the given volume (-V, never deleted) or creates
// one from the base's root snapshot, attaches it and grows what grows
// unmounted; it returns the volume and its local device. It sets pl.size
// and pl.grow to the volume's.
func prepareVolume(ctx context.Context, p *pipeline.Pipeline, env *Environment, req Request, pl *bakePlan, log *slog.Logger) (*plugin.Volume, string, error) {
	// Not named results: the undos below must keep the volume when an
	// error return sets the results to nil.
	var vol *plugin.Volume
	var dev string
	var err error
	if req.VolumeID != "" {
		if err := p.Stage(ctx, "adopt volume", func(ctx context.Context) error {
			vol, dev, err = env.Volume.Adopt(ctx, req.VolumeID)
			return err
		}); err != nil {
			return nil, "", err
		}
		log.Info("using the given volume", "volume", vol.ID, "device", dev)
		if vol.SizeBytes < pl.size {
			return nil, "", fmt.Errorf("volume %s (%d bytes) is smaller than the base image's root (%d bytes)", vol.ID, vol.SizeBytes, pl.size)
		}
		pl.size, pl.grow = vol.SizeBytes, pl.grow && vol.SizeBytes > pl.baseBytes
	} else {
		if err := p.Stage(ctx, "create volume", func(ctx context.Context) error {
			host, _ := env.Cloud.Host(ctx)
			vol, err = env.Volume.Create(ctx, pl.base, pl.size, plugin.Tags{
				"purpose": "amination", "status": "busy", "ami": pl.base.ID, "ami-name": pl.base.Name, "arch": pl.arch, "bake": req.BakeID,
				"host": host.InstanceID,
			})
			return err
		}); err != nil {
			return nil, "", err
		}
		log.Info("volume created", "volume", vol.ID, "bytes", vol.SizeBytes)
		p.Release("delete volume "+vol.ID, "aminate volumes rm "+vol.ID, func(ctx context.Context) error { return env.Volume.Delete(ctx, vol) })
	}
	if dev == "" {
		if err := p.Stage(ctx, "attach volume", func(ctx context.Context) error {
			dev, err = env.Volume.Attach(ctx, vol, req.BlockDevice)
			return err
		}); err != nil {
			return nil, "", err
		}
		log.Info("volume attached", "device", dev)
		p.Release("detach volume "+vol.ID, "the volume is detached once it is unmounted", func(ctx context.Context) error { return env.Volume.Detach(ctx, vol) })
	}
	if pl.grow {
		if err := p.Stage(ctx, "grow filesystem", func(ctx context.Context) error { return env.Volume.Grow(ctx, dev, req.Partition) }); err != nil {
			return nil, "", err
		}
	}
	return vol, dev, nil
}

// mountVolume mounts the volume's root filesystem at mnt and prepares the
// chroot; the chroot is returned even on a later failure, so it can be
// preserved.
func mountVolume(ctx context.Context, p *pipeline.Pipeline, env *Environment, req Request, pl *bakePlan, dev, mnt string) (c plugin.Chroot, unmount *pipeline.Undo, err error) {
	if err := p.Stage(ctx, "mount", func(ctx context.Context) error {
		c, err = env.Distro.Enter(ctx, plugin.MountOptions{Device: dev, Partition: req.Partition, MountPoint: mnt})
		if err != nil {
			return err
		}
		unmount = p.Release("unmount "+mnt, "umount -R "+mnt, c.Close)
		return nil
	}); err != nil {
		return c, unmount, err
	}
	if pl.grow {
		if err := p.Stage(ctx, "grow mounted filesystem", func(ctx context.Context) error { return env.Volume.GrowMounted(ctx, mnt) }); err != nil {
			return c, unmount, err
		}
	}
	return c, unmount, nil
}

// provision installs the package. A repository package whose version
// only the image's repositories tell is resolved first, and the name it
// makes checked before anything is installed; a provisioner that cannot
// resolve has the name checked right after the install.
func provision(ctx context.Context, p *pipeline.Pipeline, env *Environment, c plugin.Chroot, req Request, pl *bakePlan, log *slog.Logger) (info *plugin.PackageInfo, name string, err error) {
	ref := pl.ref
	if in, ok := env.Provisioner.(plugin.Inspector); ok && pl.name == "" {
		var known *plugin.PackageInfo
		if err := p.Stage(ctx, "resolve package", func(ctx context.Context) (err error) {
			ref, known, err = in.Resolve(ctx, c, ref)
			return err
		}); err != nil {
			return nil, "", err
		}
		if known != nil {
			log.Info("package resolved", "name", known.Name, "version", known.FullVersion)
			if err := CheckName(ctx, env.Cloud, imageName(req, env, pl, known)); err != nil {
				return nil, "", err
			}
			pl.name = imageName(req, env, pl, known)
		}
	}
	if err := p.Stage(ctx, "provision", func(ctx context.Context) error {
		info, err = env.Provisioner.Provision(ctx, c, ref)
		return err
	}); err != nil {
		return nil, "", err
	}
	log.Info("package installed", "name", info.Name, "version", info.FullVersion, "arch", info.Arch)
	name = imageName(req, env, pl, info)
	if name != pl.name {
		if err := CheckName(ctx, env.Cloud, name); err != nil {
			return info, name, err
		}
	}
	return info, name, nil
}

// customize runs the image's scripts, the interactive shell if asked, and
// reads the package manifest.
func customize(ctx context.Context, p *pipeline.Pipeline, env *Environment, c plugin.Chroot, req Request, pl *bakePlan, info *plugin.PackageInfo, name string, log *slog.Logger) ([]plugin.Package, error) {
	host, _ := env.Cloud.Host(ctx)
	scriptEnv := map[string]string{
		"AMINATOR_PACKAGE": info.Name, "AMINATOR_ENVIRONMENT": env.Name, "AMINATOR_BASE_AMI_ID": pl.base.ID,
		"AMINATOR_BASE_AMI_NAME": pl.base.Name, "AMINATOR_REGION": host.Region, "AMINATOR_AMI_NAME": name,
		"AMINATOR_AMI_SUFFIX": req.Suffix, "AMINATOR_CREATOR": req.Creator, "AMINATOR_VM_TYPE": req.VMType,
		"AMINATOR_STORE_TYPE": env.Finalizer.StoreType(),
	}
	if err := p.Stage(ctx, "scripts", func(ctx context.Context) error {
		return runScripts(ctx, c, scriptEnv, log)
	}); err != nil {
		return nil, err
	}
	if req.Interactive {
		if err := c.Run(ctx, plugin.Run{Argv: []string{"/bin/sh", "-l"}, Env: scriptEnv, Interactive: true}); err != nil {
			log.Warn("interactive shell ended with an error", "err", err)
		}
	}
	var manifest []plugin.Package
	err := p.Stage(ctx, "manifest", func(ctx context.Context) (err error) {
		manifest, err = env.Provisioner.Manifest(ctx, c)
		return err
	})
	return manifest, err
}

// register snapshots the unmounted volume and registers the image with
// the user's tags and the bake's own.
func register(ctx context.Context, p *pipeline.Pipeline, env *Environment, req Request, pl *bakePlan, vol *plugin.Volume, info *plugin.PackageInfo, name string, manifest []plugin.Package, unmount *pipeline.Undo) (image *plugin.Image, err error) {
	base, f := pl.base, fields(req, env, pl, info)
	tags := plugin.Tags{}
	for k, v := range req.Tags {
		tags[k] = v
	}
	for k, v := range ownTags(req, pl, f) {
		tags[k] = v
	}
	snapTags := plugin.Tags{}
	for k, v := range tags {
		snapTags[k] = v
	}
	snapTags["bake"] = req.BakeID
	if host, err := env.Cloud.Host(ctx); err == nil {
		snapTags["host"] = host.InstanceID
	}
	tags["creation_time"] = naming.CreationTime(time.Now())
	volType := req.RegisterType
	if volType == "" {
		volType = pl.root.VolumeType
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
	err = p.Stage(ctx, "snapshot and register", func(ctx context.Context) error {
		if err := unmount.Now(ctx); err != nil {
			return err
		}
		snap, err := env.Finalizer.Snapshot(ctx, plugin.SnapshotVolume{Volume: vol, ImageName: name, Tags: snapTags})
		if err != nil {
			return err
		}
		p.Rollback("delete snapshot "+snap.ID, func(ctx context.Context) error { return env.Cloud.DeleteSnapshot(ctx, snap.ID) })
		image, err = env.Finalizer.Register(ctx, plugin.RegisterSnapshot{
			Snapshot: snap, Base: base, SizeBytes: pl.size, VolumeType: volType,
			Image: plugin.ImageRequest{
				Name: name, Description: naming.Description(info.Name+"-"+info.FullVersion, pl.arch, base.Name, base.ID, baseVersion(base)),
				Architecture: pl.arch, VirtualizationType: req.VMType, EnaSupport: req.ENA, SriovNetSupport: req.SriovNet, Tags: tags,
				Packages: manifest, BootMode: bootMode, TPMSupport: req.TPMSupport, IMDSv2Required: req.IMDSv2Required,
				KernelID: kernelID, RamdiskID: ramdiskID,
			},
		})
		if err != nil {
			return err
		}
		im := image
		p.Rollback("deregister image "+im.ID, func(ctx context.Context) error { return env.Cloud.DeregisterImage(ctx, im.ID) })
		return nil
	})
	return image, err
}
