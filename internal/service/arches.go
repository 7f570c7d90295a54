package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/engine/imageref"
	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// ArchesOptions say how to bake one request for several architectures.
type ArchesOptions struct {
	// Arches are the architectures, at least two, in the order given.
	Arches []string
	// KeepPartial keeps the images of the architectures that baked when
	// another failed (the request fails either way).
	KeepPartial bool
	// Bases are the base image ids by architecture, resolved before (the
	// bakery resolves them at submission); nil: the newest image of the
	// request's family of each architecture.
	Bases map[string]string
}

// ArchBake is one architecture's bake of a request for several.
type ArchBake struct {
	Arch   string        `json:"arch"`
	Result *bake.Result  `json:"result"`
	Image  *plugin.Image `json:"image,omitempty"`
	Error  string        `json:"error,omitempty"`
	err    error
	// Removed says the image this bake made was removed because another
	// architecture's failed.
	Removed bool `json:"removed,omitempty"`
}

// ArchesResult is a request baked for several architectures.
type ArchesResult struct {
	// Group is the arch_group tag's value on every image.
	Group string `json:"arch_group"`
	// Image is the first architecture's image, where a single bake's
	// result has its image; Images are all of them, in the order asked.
	Image    *plugin.Image   `json:"image,omitempty"`
	Images   []*plugin.Image `json:"images"`
	Bakes    []ArchBake      `json:"bakes"`
	Duration time.Duration   `json:"duration_ns"`
}

// BakeArches bakes req once for each architecture of o.Arches, in
// parallel, each on the newest image of the family req.BaseName names of
// that architecture (with its label, if any). The images share the
// arch_group tag (the job's id) and each names the others in
// arch_siblings; their appversion is the package's, the same for all.
// A failure of one fails the request: the others are cancelled and what
// they made is removed, unless o.KeepPartial, which lets them finish and
// keeps their images (tagged with the group). The result is never nil.
func (j *Job) BakeArches(ctx context.Context, env *bake.Environment, req bake.Request, o ArchesOptions) (*ArchesResult, error) {
	start := time.Now()
	res := &ArchesResult{Group: j.ID}
	if err := CheckArchRequest(req, o); err != nil {
		return res, err
	}
	bases, err := archBases(ctx, env.Cloud, req, o)
	if err != nil {
		return res, err
	}
	if err := checkArchTags(env.Cloud, req, bases, j.ID); err != nil {
		return res, err
	}
	if req.Suffix == "" {
		req.Suffix = naming.Suffix(start)
	}
	res.Bakes = j.bakeEach(ctx, env, req, o, bases)
	err = j.linkArches(ctx, env.Cloud, res, o.KeepPartial)
	res.Duration = time.Since(start)
	return res, err
}

// CheckArchRequest refuses what a bake of several architectures cannot
// do: one given base image, volume or device serves one architecture,
// and one shell one bake.
func CheckArchRequest(req bake.Request, o ArchesOptions) error {
	usage := func(format string, a ...any) error { return &bake.UsageError{Err: fmt.Errorf(format, a...)} }
	list := strings.Join(o.Arches, ",")
	switch {
	case len(o.Arches) < 2:
		return usage("--arch %s: a bake for several architectures needs two or more", list)
	case req.BaseID != "":
		return usage("-B %s names one image of one architecture; --arch %s bakes on the newest base of each architecture of a family: give -b FAMILY", req.BaseID, list)
	case req.BaseName == "" && o.Bases == nil:
		return usage("no base image: --arch %s takes -b FAMILY", list)
	case req.VolumeID != "" || req.BlockDevice != "":
		return usage("-V/--volume-id and --block-device name one volume or device; --arch %s bakes on one volume per architecture", list)
	case req.Interactive:
		return usage("-i/--interactive opens one shell in one bake; --arch %s runs several at once", list)
	}
	for _, a := range o.Arches {
		if o.Bases != nil && o.Bases[a] == "" {
			return usage("no base image resolved for %s", a)
		}
	}
	return nil
}

// archBases finds each architecture's base (checking the given ones are
// of their architecture), before any work: a missing one fails the
// request with nothing made.
func archBases(ctx context.Context, c plugin.ImageFinder, req bake.Request, o ArchesOptions) (map[string]*plugin.Image, error) {
	family, label := channels.SplitRef(req.BaseName)
	if req.BaseLabel != "" {
		label = req.BaseLabel
	}
	if label == "" {
		family = req.BaseName
	}
	bases := map[string]*plugin.Image{}
	for _, arch := range o.Arches {
		ref := imageref.Ref{Name: family, Label: label, Arch: arch}
		if o.Bases != nil {
			ref = imageref.Ref{ID: o.Bases[arch]}
		}
		im, err := imageref.Resolve(ctx, c, ref)
		if err != nil {
			return nil, fmt.Errorf("base image for %s: %w", arch, err)
		}
		if im.Architecture != "" && im.Architecture != arch {
			return nil, &bake.UsageError{Err: fmt.Errorf("base image %s (%s) for %s is %s", im.ID, im.Name, arch, im.Architecture)}
		}
		bases[arch] = im
	}
	return bases, nil
}

// checkArchTags checks, before any work, that the cloud takes the user's
// tags with each image's own and the two that link them.
func checkArchTags(c plugin.Cloud, req bake.Request, bases map[string]*plugin.Image, group string) error {
	if err := naming.CheckUserTags(req.Tags, naming.ScopeBake); err != nil {
		return &bake.UsageError{Err: err}
	}
	for arch, base := range bases {
		r := req
		r.Tags, r.BaseArch = nil, arch
		image, _ := bake.Tags(bake.TagInput{Request: r, Base: base, Host: &plugin.Host{}, Boot: bootdisk.TagBoth})
		var sib []string
		for a := range bases {
			if a != arch {
				sib = append(sib, a+":ami-0123456789abcdef0")
			}
		}
		image[naming.TagArchGroup] = group
		image[naming.TagArchSiblings] = strings.Join(sib, ",")
		if err := bake.CheckTags(plugin.LimitsOf(c), req.Tags, map[string]plugin.Tags{"image": image}); err != nil {
			return &bake.UsageError{Err: fmt.Errorf("--arch %s: %w", arch, err)}
		}
	}
	return nil
}

// bakeEach runs the bakes, one per architecture, in parallel. Without
// keepPartial the first failure cancels the others.
func (j *Job) bakeEach(ctx context.Context, env *bake.Environment, req bake.Request, o ArchesOptions, bases map[string]*plugin.Image) []ArchBake {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([]ArchBake, len(o.Arches))
	var wg sync.WaitGroup
	for i, arch := range o.Arches {
		r := req
		r.BaseID, r.BaseName, r.BaseLabel, r.BaseArch, r.Arch = "", req.BaseName, req.BaseLabel, arch, arch
		if o.Bases != nil {
			r.BaseID, r.BaseName, r.BaseLabel, r.BaseArch = bases[arch].ID, "", "", ""
		}
		if req.Name != "" { // one name for several images: each gets its architecture
			r.Suffix = req.Suffix + "-" + arch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = ArchBake{Arch: arch}
			res, err := j.bakeArch(ctx, env, r)
			out[i].Result = res
			if err != nil {
				out[i].Error, out[i].err = err.Error(), err
				if !o.KeepPartial {
					cancel(fmt.Errorf("the %s bake failed", arch))
				}
				return
			}
			out[i].Image = res.Image
		}()
	}
	wg.Wait()
	return out
}

// bakeArch runs one architecture's bake as a job of its own id (the
// job's, with the architecture), under a lock of that id, which gc
// respects as it does the job's.
func (j *Job) bakeArch(ctx context.Context, env *bake.Environment, r bake.Request) (*bake.Result, error) {
	log := slog.New(archStages{j.Log.Handler(), r.Arch}).With("target", r.Arch)
	sub := &Job{ID: j.ID + "-" + r.Arch, Kind: j.Kind, Config: j.Config, Log: log, LogPath: j.LogPath}
	if j.Config != nil && j.Config.LockDir != "" {
		lock, err := flock.TryExclusive(filepath.Join(j.Config.LockDir, sub.ID+".lock"))
		if err != nil {
			return &bake.Result{BakeID: sub.ID}, err
		}
		defer func() {
			lock.Unlock()
		}()
	}
	res, err := sub.Bake(ctx, env, r)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (stopped: %v)", err, context.Cause(ctx))
	}
	return res, err
}

// linkArches tags the images with their group and siblings when every
// bake made one; after a failure it removes them, or with keepPartial
// tags the ones kept with their group. Its error is the request's.
func (j *Job) linkArches(ctx context.Context, c plugin.Cloud, res *ArchesResult, keepPartial bool) error {
	ctx = context.WithoutCancel(ctx) // what a cancelled request made goes too
	var failed []error
	var made []*ArchBake
	for i := range res.Bakes {
		b := &res.Bakes[i]
		if b.err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", b.Arch, b.err))
		}
		if b.Image != nil && b.Result != nil && b.Result.Plan == nil {
			made = append(made, b)
		}
	}
	if len(failed) > 0 && !keepPartial {
		return errors.Join(append(failed, j.removeArches(ctx, c, made))...)
	}
	if err := tagArches(ctx, c, res.Group, made); err != nil {
		failed = append(failed, err)
		if !keepPartial {
			return errors.Join(append(failed, j.removeArches(ctx, c, made))...)
		}
	}
	for _, b := range res.Bakes {
		if b.Image != nil {
			res.Images = append(res.Images, b.Image)
		}
	}
	if len(res.Images) > 0 {
		res.Image = res.Images[0]
	}
	if len(failed) > 0 {
		j.Log.Warn("kept the images that baked (--keep-partial)", "group", res.Group, "images", len(res.Images))
	}
	return errors.Join(failed...)
}

// tagArches gives each image the group's tag and its siblings' ids, and
// reads it back with them.
func tagArches(ctx context.Context, c plugin.Cloud, group string, made []*ArchBake) error {
	var errs []error
	for _, b := range made {
		var sib []string
		for _, o := range made {
			if o != b {
				sib = append(sib, o.Arch+":"+o.Image.ID)
			}
		}
		tags := plugin.Tags{naming.TagArchGroup: group}
		if len(sib) > 0 {
			tags[naming.TagArchSiblings] = strings.Join(sib, ",")
		}
		if err := c.CreateTags(ctx, b.Image.ID, tags); err != nil {
			errs = append(errs, fmt.Errorf("tag %s image %s: %w", b.Arch, b.Image.ID, err))
			continue
		}
		if im, err := c.Image(ctx, plugin.ImageQuery{ID: b.Image.ID}); err == nil {
			b.Image = im
		}
	}
	return errors.Join(errs...)
}

// removeArches removes the images of the bakes that made one, as a
// failure of another architecture fails the request.
func (j *Job) removeArches(ctx context.Context, c plugin.Cloud, made []*ArchBake) error {
	var errs []error
	var docs DocStore // the images' SBOMs and provenance, when they were stored
	if j.Config != nil {
		if s, err := OpenAttest(j.Config, ""); err != nil {
			j.Log.Warn("the removed images' documents stay until gc", "err", err)
		} else {
			defer s.Close()
			docs = s
		}
	}
	for _, b := range slices.Backward(made) {
		r, err := RemoveImage(ctx, c, docs, b.Image.ID, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove the %s image %s: %w", b.Arch, b.Image.ID, err))
			continue
		}
		j.Log.Warn("removed an image: another architecture of the request failed (--keep-partial keeps it)", "arch", b.Arch, "image", r.Image, "snapshots", r.Snapshots)
		b.Removed, b.Image = true, nil
	}
	return errors.Join(errs...)
}

// archStages names an architecture's stages after it ("arm64: provision"),
// so the console's `==>` lines, and the bakery's stages read from the
// log, tell the bakes that run at once apart.
type archStages struct {
	slog.Handler
	arch string
}

func (h archStages) Handle(ctx context.Context, r slog.Record) error {
	stage := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stage" {
			stage = a.Value.String()
		}
		return stage == ""
	})
	if stage == "" {
		return h.Handler.Handle(ctx, r)
	}
	msg := r.Message
	if msg == "stage "+stage {
		msg = "stage " + h.arch + ": " + stage
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stage" {
			a = slog.String("stage", h.arch+": "+stage)
		}
		out.AddAttrs(a)
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h archStages) WithAttrs(as []slog.Attr) slog.Handler {
	return archStages{h.Handler.WithAttrs(as), h.arch}
}

func (h archStages) WithGroup(name string) slog.Handler {
	return archStages{h.Handler.WithGroup(name), h.arch}
}
