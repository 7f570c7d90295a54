package bake

import (
	"context"
	"time"

	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
)

// describeImage works out the image to register and its snapshot's tags:
// the name, the description, what it runs on and how it boots (bootMode:
// from the loaders on the unmounted volume), and the tags (Tags).
type describeImage struct{}

func (describeImage) Name() string { return "" }

func (describeImage) Run(ctx context.Context, s *State) error {
	base, info := s.Base, s.Package
	bootMode, boot, err := bootMode(ctx, s)
	if err != nil {
		return err
	}
	in := TagInput{Request: s.Req, Base: base, Fields: s.fields(info), Boot: boot, Now: time.Now()}
	if host, err := s.Env.Cloud.Host(ctx); err == nil {
		in.Host = &host
	}
	tags, snapTags := Tags(in)
	s.SnapshotTags = snapTags
	s.VolumeType = s.Req.RegisterType
	if s.VolumeType == "" {
		s.VolumeType = s.BaseRoot.VolumeType
	}
	var kernelID, ramdiskID string
	if s.Req.VMType == "paravirtual" {
		kernelID, ramdiskID = base.KernelID, base.RamdiskID
	}
	s.NewImage = plugin.ImageRequest{
		Name: s.Name, Description: naming.Description(info.Name+"-"+info.FullVersion, s.Arch, base.Name, base.ID, baseVersion(base)),
		Architecture: s.Arch, VirtualizationType: s.Req.VMType, EnaSupport: s.Req.ENA, SriovNetSupport: s.Req.SriovNet, Tags: tags,
		Packages: s.Manifest, BootMode: bootMode, TPMSupport: s.Req.TPMSupport, IMDSv2Required: s.Req.IMDSv2Required,
		KernelID: kernelID, RamdiskID: ramdiskID,
	}
	return nil
}
