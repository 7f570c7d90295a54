package bake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"

	"github.com/aminator-go/aminator/internal/channels"
	"github.com/aminator-go/aminator/internal/ids"
	"github.com/aminator-go/aminator/internal/imageref"
	"github.com/aminator-go/aminator/internal/naming"
	"github.com/aminator-go/aminator/internal/pipeline"
	"github.com/aminator-go/aminator/internal/plugin"
)

// bakePlan is what a bake found before making anything.
type bakePlan struct {
	ref  plugin.PackageRef
	base *plugin.Image
	root *plugin.BlockDeviceMapping
	// baseBytes is the base's root snapshot's size; size the volume's.
	baseBytes, size int64
	grow            bool
	arch            string
	// pkg is the package as known before installing (nil: not yet).
	pkg *plugin.PackageInfo
	// name is the image name once known and checked free ("": not yet).
	name string
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
	if _, ok := env.Cloud.(plugin.Distributor); !req.Distribution.Empty() && !ok {
		return usage("environment %q cannot copy, share or deprecate images (--copy-to, --share-with, --deprecate-at)", env.Name)
	}
	if err := naming.CheckUserTags(req.Tags, naming.ScopeBake); err != nil {
		return ref, &UsageError{err}
	}
	return ref, nil
}

// plan resolves the base, sizes the volume, checks the tags against the
// cloud's limits and reads the package; when that tells the image name,
// the name is checked free. The plan is never nil.
func plan(ctx context.Context, p *pipeline.Pipeline, env *Environment, req *Request, ref plugin.PackageRef, log *slog.Logger) (*bakePlan, error) {
	pl := &bakePlan{ref: ref}
	if err := resolveBase(ctx, p, env, req, pl, log); err != nil {
		return pl, err
	}
	if err := checkTagLimits(env, *req, pl); err != nil {
		return pl, &UsageError{err}
	}
	if err := inspectPackage(ctx, p, env, pl, log); err != nil {
		return pl, err
	}
	switch {
	case req.Name != "":
		pl.name = naming.ImageName(req.Name, naming.Fields{Suffix: req.Suffix})
	case pl.pkg != nil:
		pl.name = imageName(*req, env, pl, pl.pkg)
	default:
		log.Info("the image name depends on the version the repositories offer: it is checked once the package is resolved", "package", ref.Raw)
		return pl, nil
	}
	return pl, CheckName(ctx, env.Cloud, pl.name)
}

// resolveBase finds the base image and its root snapshot, and works out
// the partition, the volume's size and the architecture.
func resolveBase(ctx context.Context, p *pipeline.Pipeline, env *Environment, req *Request, pl *bakePlan, log *slog.Logger) error {
	if err := p.Stage(ctx, "resolve base", func(ctx context.Context) (err error) {
		pl.base, err = imageref.Resolve(ctx, env.Cloud, imageref.Ref{ID: req.BaseID, Name: req.BaseName, Label: req.BaseLabel})
		return err
	}); err != nil {
		return err
	}
	base := pl.base
	if req.BaseLabel != "" {
		log.Info("base image resolved", "family", req.BaseName, "label", req.BaseLabel, "id", base.ID, "name", base.Name)
	} else {
		log.Info("base image", "id", base.ID, "name", base.Name)
	}
	if pl.root = base.Root(); pl.root == nil || pl.root.SnapshotID == "" {
		return fmt.Errorf("base image %s has no root snapshot", base.ID)
	}
	if req.Partition == 0 {
		if n, err := strconv.Atoi(base.Tags["root_partition"]); err == nil && n > 0 {
			req.Partition = n
			log.Info("root filesystem on partition, as the base image records", "partition", n)
		}
	}
	snap, err := env.Cloud.Snapshot(ctx, pl.root.SnapshotID)
	if err != nil {
		return fmt.Errorf("base image %s: %w", base.ID, err)
	}
	pl.baseBytes, pl.size = snap.SizeBytes, snap.SizeBytes
	if req.RootVolumeGiB > 0 {
		want := int64(req.RootVolumeGiB) << 30
		if want < snap.SizeBytes {
			return &UsageError{fmt.Errorf("--root-volume-size %d GiB is smaller than the base image's root volume (%d bytes)", req.RootVolumeGiB, snap.SizeBytes)}
		}
		pl.grow, pl.size = want > snap.SizeBytes, want
	}
	pl.arch = req.Arch
	if pl.arch == "" {
		pl.arch = base.Architecture
	}
	if pl.arch == "" { // some APIs (moto) leave it out: assume this host's
		pl.arch = map[string]string{"amd64": "x86_64", "arm64": "arm64", "386": "i386"}[runtime.GOARCH]
	}
	return nil
}

// inspectPackage asks the provisioner which package the bake will install,
// downloading a URL's file now (removed when the bake ends).
func inspectPackage(ctx context.Context, p *pipeline.Pipeline, env *Environment, pl *bakePlan, log *slog.Logger) error {
	in, ok := env.Provisioner.(plugin.Inspector)
	if !ok || (pl.ref.Kind == "repo" && pl.ref.Version == "") {
		return nil
	}
	err := p.Stage(ctx, "inspect package", func(ctx context.Context) (err error) {
		var ref plugin.PackageRef
		ref, pl.pkg, err = in.Inspect(ctx, pl.ref)
		if ref.Path != "" && ref.Path != pl.ref.Path { // downloaded
			path := ref.Path
			p.Release("remove "+path, "", func(context.Context) error { return os.Remove(path) })
		}
		pl.ref = ref
		return err
	})
	if err != nil {
		if pl.ref.Kind == "file" {
			return &UsageError{err}
		}
		return err
	}
	if pl.pkg != nil {
		log.Info("package", "name", pl.pkg.Name, "version", pl.pkg.FullVersion)
	}
	return nil
}

// imageName is the name the package makes (or the one given).
func imageName(req Request, env *Environment, pl *bakePlan, pkg *plugin.PackageInfo) string {
	return naming.ImageName(req.Name, fields(req, env, pl, pkg))
}

func fields(req Request, env *Environment, pl *bakePlan, pkg *plugin.PackageInfo) naming.Fields {
	return naming.Fields{Name: pkg.Name, Version: pkg.Version, Release: pkg.Release, Arch: pl.arch, Suffix: req.Suffix, StoreType: env.Finalizer.StoreType()}
}

// CheckName refuses, with a usage error, a name RegisterImage would refuse.
func CheckName(ctx context.Context, c plugin.Cloud, name string) error {
	var err error
	if nc, ok := c.(plugin.NameChecker); ok {
		err = nc.CheckName(ctx, name)
	} else if im, ierr := c.Image(ctx, plugin.ImageQuery{Name: name}); ierr == nil {
		err = fmt.Errorf("an image named %q (%s) %w", name, im.ID, plugin.ErrExists)
	} else if !errors.Is(ierr, plugin.ErrNotFound) {
		err = ierr
	}
	if errors.Is(err, plugin.ErrExists) {
		return &UsageError{fmt.Errorf("%w: pick another name with -n or -s", err)}
	}
	return err
}
