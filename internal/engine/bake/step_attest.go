package bake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Attesting says the environment attests its images.
func Attesting(s *State) bool { return s.Env.Attest != nil }

// NeedsDiskRead says the cloud cannot give a snapshot's disk digest
// without reading it, so the bake reads the volume for it before the
// snapshot (and tags the snapshot with it where the cloud keeps it so).
func NeedsDiskRead(s *State) bool {
	_, ok := s.Env.Cloud.(plugin.DiskDigests)
	_, tags := s.Env.Cloud.(plugin.DiskDigestTags)
	return Attesting(s) && (!ok || tags)
}

// readInventory lists the image's packages from its own package database
// (never by running its binaries), after the image is cleaned and before
// it is unmounted; licences the base's SBOM already gave are reused.
type readInventory struct{}

func (readInventory) Name() string { return "inventory" }

func (readInventory) Run(ctx context.Context, s *State) error {
	var opt sbom.Options
	if s.Base != nil {
		lic, err := s.Env.Attest.Store.Licences(ctx, s.Base.ID)
		if err != nil {
			s.Log.Debug("no licences of the base to reuse", "base", s.Base.ID, "err", err)
		}
		opt.Licences = lic
	}
	inv, err := sbom.ReadRoot(s.Chroot.Root(), opt)
	if err != nil {
		return fmt.Errorf("read the image's packages for its SBOM: %w", err)
	}
	s.Inventory = inv
	return nil
}

// ReadDiskDigest reads the unmounted volume's disk digest where the cloud
// cannot give a snapshot's without reading it (EC2: the volume is this
// host's device); on a cloud with DiskDigestTags it goes in the
// snapshot's tags, from which DiskDigest gives it later.
type ReadDiskDigest struct{}

// Name is the stage's.
func (ReadDiskDigest) Name() string { return "disk digest" }

// Run reads s.Device.
func (ReadDiskDigest) Run(ctx context.Context, s *State) error {
	f, err := os.Open(s.Device)
	if err != nil {
		return fmt.Errorf("read the volume for its disk digest: %w", err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return fmt.Errorf("size of %s: %w", s.Device, err)
	}
	s.DiskDigest, err = diskdigest.OfFile(ctx, f, size)
	return err
}

// snapshotTags are s.SnapshotTags and, on a cloud with DiskDigestTags,
// the disk digest the bake read.
func snapshotTags(s *State) plugin.Tags {
	t, ok := s.Env.Cloud.(plugin.DiskDigestTags)
	if !ok || s.DiskDigest == "" {
		return s.SnapshotTags
	}
	tags := maps.Clone(s.SnapshotTags)
	if tags == nil {
		tags = plugin.Tags{}
	}
	k, v := t.DiskDigestTag(s.DiskDigest)
	tags[k] = v
	return tags
}

// AttestImage writes the registered image's SBOMs and signed provenance
// and keeps them; they are removed if a later step fails. Config gives
// the resolved settings the provenance names (nil: a bake's, from its
// request); Base and Package come from the state (none: a foundation).
type AttestImage struct {
	Config func(s *State) map[string]any
}

// Name is the stage's.
func (AttestImage) Name() string { return "attest" }

// Run attests s.Image.
func (a AttestImage) Run(ctx context.Context, s *State) error {
	if s.Inventory == nil {
		return errors.New("attest: no package inventory was read")
	}
	at, err := attestation(ctx, s)
	if err != nil {
		return err
	}
	if a.Config != nil {
		at.Configuration = a.Config(s)
	} else {
		at.Configuration = settings(s)
	}
	docs, err := s.Env.Attest.Attest(ctx, at)
	if err != nil {
		return err
	}
	id := s.Image.ID
	s.Undo.Rollback("remove the SBOMs and provenance of "+id, func(ctx context.Context) error {
		return s.Env.Attest.Store.Forget(ctx, id)
	})
	return publish(ctx, s, docs)
}

// publish keeps the documents beside the image where the Attester has a
// Publisher, and tags the image with their references.
func publish(ctx context.Context, s *State, docs Documents) error {
	p := s.Env.Attest.Publisher
	if p == nil {
		return nil
	}
	id := s.Image.ID
	s.Undo.Rollback("remove the published SBOMs and provenance of "+id, func(ctx context.Context) error {
		return p.Unpublish(ctx, id)
	})
	tags, err := p.Publish(ctx, id, docs)
	if err != nil {
		return fmt.Errorf("publish the SBOMs and provenance of %s: %w", id, err)
	}
	if err := s.Env.Cloud.CreateTags(ctx, id, tags); err != nil {
		return fmt.Errorf("tag image %s with its SBOM and provenance: %w", id, err)
	}
	if s.Image.Tags == nil {
		s.Image.Tags = plugin.Tags{}
	}
	maps.Copy(s.Image.Tags, tags)
	return nil
}

// attestation gathers what the documents say from the state: the disk
// digests of the image and its base, the package and the times.
func attestation(ctx context.Context, s *State) (Attestation, error) {
	at := Attestation{ImageID: s.Image.ID, Inventory: s.Inventory, BakeID: s.Req.BakeID,
		Started: s.Started, Finished: time.Now(), DiskDigest: s.DiskDigest}
	var err error
	if at.DiskDigest == "" {
		if at.DiskDigest, err = snapshotDigest(ctx, s, s.Snapshot.ID); err != nil {
			return at, fmt.Errorf("disk digest of image %s: %w", s.Image.ID, err)
		}
	}
	if s.Base == nil || s.Package == nil {
		return at, nil
	}
	at.Base = &provenance.Image{ID: s.Base.ID}
	if s.BaseRoot != nil {
		if at.Base.DiskDigest, err = snapshotDigest(ctx, s, s.BaseRoot.SnapshotID); err != nil {
			return at, fmt.Errorf("disk digest of base %s: %w", s.Base.ID, err)
		}
	}
	at.Package = &provenance.Package{Name: s.Package.Name, Version: s.Package.FullVersion, SHA256: s.Package.SHA256, URI: purlOf(s.Inventory, s.Package)}
	return at, nil
}

func snapshotDigest(ctx context.Context, s *State, id string) (string, error) {
	d, ok := s.Env.Cloud.(plugin.DiskDigests)
	if !ok {
		return "", fmt.Errorf("the cloud cannot give snapshot %s's disk digest", id)
	}
	return d.DiskDigest(ctx, id)
}

// purlOf is the installed package's purl, from the inventory; a package
// the inventory does not list (a package database the SBOM cannot read,
// such as rpm's in a Debian image that carries rpm) gets a generic purl
// from what the provisioner read, so the provenance can still name it.
func purlOf(inv *sbom.Inventory, pkg *plugin.PackageInfo) string {
	for _, p := range inv.Packages {
		if p.Name == pkg.Name {
			return p.PURL
		}
	}
	var q packageurl.Qualifiers
	if pkg.Arch != "" {
		q = packageurl.QualifiersFromMap(map[string]string{"arch": pkg.Arch})
	}
	return packageurl.NewPackageURL(packageurl.TypeGeneric, "", pkg.Name, pkg.FullVersion, q, "").ToString()
}

// settings are a bake's resolved settings by configuration key, as its
// provenance names them: what was asked and the base it resolved to.
func settings(s *State) map[string]any {
	r := s.Req
	m := map[string]any{
		"environment": s.Env.Name, "package": r.Package, "vm_type": r.VMType, "arch": s.Arch,
		"ena_networking": r.ENA, "enhanced_networking": r.SriovNet, "partition": r.Partition,
		"script_network": r.ScriptNetwork, "tpm_support": r.TPMSupport, "imdsv2_required": r.IMDSv2Required,
		"root_volume_size": int(s.Size >> 30),
	}
	for k, v := range map[string]string{"base_ami_id": s.Base.ID, "base_ami_name": r.BaseName, "label": r.BaseLabel,
		"name": s.Name, "suffix": r.Suffix, "creator": r.Creator, "boot_mode": r.BootMode,
		"provisioner_ebs_type": r.VolumeType, "register_ebs_type": r.RegisterType, "package_sha256": r.PackageSHA256} {
		if v != "" {
			m[k] = v
		}
	}
	if len(r.Tags) > 0 {
		tags := map[string]any{}
		for k, v := range r.Tags {
			tags[k] = v
		}
		m["tags"] = tags
	}
	return m
}
