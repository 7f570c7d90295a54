package bake

import (
	"fmt"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/engine/undo"
	"github.com/aminator-go/aminator/internal/fetch"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
)

// Request is what to bake.
type Request struct {
	Package string
	// PackageSHA256 (hex) is what a package file's or URL's bytes must
	// hash to; they are checked before they are used.
	PackageSHA256 string
	BaseID        string
	BaseName      string
	// BaseLabel picks the newest image of family BaseName with this
	// channel label (also written BaseName "family:label").
	BaseLabel string
	// BaseArch, with BaseName, picks the newest image of family BaseName
	// of this architecture (one of a bake of several architectures).
	BaseArch        string
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
	// ScriptNetwork gives package scripts the bake's network (issue 10);
	// the image is tagged script_network=true.
	ScriptNetwork  bool
	Tags           map[string]string
	BootMode       string
	TPMSupport     bool
	IMDSv2Required bool
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
		RegisterType: c.RegisterEBSType, Interactive: c.Interactive, PreserveOnError: c.PreserveOnError, ScriptNetwork: c.ScriptNetwork, Tags: c.Tags,
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
	Timings  []undo.Timing       `json:"timings"`
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

// checkRequest checks what needs no cloud: the base given, the package,
// the flags the environment cannot honour and the user's tags. It splits
// -b FAMILY:LABEL into BaseName and BaseLabel and returns the package.
func checkRequest(env *Environment, req *Request) (plugin.PackageRef, error) {
	usage := func(format string, a ...any) (plugin.PackageRef, error) {
		return plugin.PackageRef{}, &UsageError{fmt.Errorf(format, a...)}
	}
	switch {
	case req.BaseID == "" && req.BaseName == "":
		return usage("no base image: give -B ID or -b NAME")
	case req.BaseID != "" && req.BaseName != "":
		return usage("-B/--base-ami-id and -b/--base-ami-name are mutually exclusive: give one base image")
	case req.BaseID != "" && !ids.Valid("ami", req.BaseID):
		return usage("base image id %q does not look like ami-<hex>", req.BaseID)
	}
	family, label := channels.SplitRef(req.BaseName)
	if req.BaseLabel != "" {
		if label != "" && label != req.BaseLabel {
			return usage("-b %s and --label %s disagree", req.BaseName, req.BaseLabel)
		}
		label = req.BaseLabel
	}
	if label != "" && req.BaseID != "" {
		return usage("--label resolves a base by name; give -b NAME, not -B")
	}
	if label != "" {
		req.BaseName, req.BaseLabel = family, label
	}
	ref, err := env.Provisioner.Parse(req.Package)
	if err != nil {
		return ref, &UsageError{err}
	}
	if err := fetch.CheckSum(req.PackageSHA256); err != nil {
		return usage("--package-sha256: %v", err)
	}
	if req.PackageSHA256 != "" && ref.Kind == "repo" {
		return usage("--package-sha256 checks a package file or URL, not the repository package %q", req.Package)
	}
	ref.SHA256 = req.PackageSHA256
	if _, ok := env.Cloud.(plugin.Distributor); !req.Distribution.Empty() && !ok {
		return usage("environment %q cannot copy, share or deprecate images (--copy-to, --share-with, --deprecate-at)", env.Name)
	}
	if err := naming.CheckUserTags(req.Tags, naming.ScopeBake); err != nil {
		return ref, &UsageError{err}
	}
	return ref, nil
}
