package service

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/sys/flock"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fakechroot"
)

// archFakes is a fake cloud with a family "base" of two x86_64 images and
// one arm64 image, and an environment that bakes on it with the real
// bake steps, a fake chroot and the real tagging finalizer.
type archFakes struct {
	cloud              *fakecloud.Cloud
	env                *bake.Environment
	oldX86, x86, arm64 *plugin.Image
	// hook, when set, sees the cloud's calls (after the recorder).
	hook func(call string) error
}

func newArchFakes(t *testing.T) *archFakes {
	t.Helper()
	f := &archFakes{cloud: fakecloud.New()}
	tags := func() plugin.Tags {
		return plugin.Tags{channels.TagRole: channels.RoleBase, channels.TagFamily: "base", "appversion": "base-1.0-1"}
	}
	f.oldX86 = f.cloud.AddImage("base-old-x86_64", 1<<30, tags())
	f.arm64 = f.cloud.AddImageArch("base-arm64", "arm64", 1<<30, tags())
	f.x86 = f.cloud.AddImage("base-x86_64", 1<<30, tags())
	f.cloud.Hook = func(call string) error {
		if f.hook != nil {
			return f.hook(call)
		}
		return nil
	}
	log := slog.New(slog.DiscardHandler)
	// The arm64 bake runs under emulation here: a binfmt_misc stand-in
	// with the handler Debian's qemu-user-static registers, F flag added.
	handlers := t.TempDir()
	for name, h := range map[string]string{"qemu-aarch64": aarch64Handler, "qemu-x86_64": x86Handler} { // x86_64 is foreign on arm64 hosts
		if err := os.WriteFile(filepath.Join(handlers, name), []byte(h), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.env = &bake.Environment{Binfmt: config.Binfmt{Dir: handlers}, Name: "fake", Cloud: f.cloud, Volume: f.cloud.VolumePlugin(), Distro: &fakechroot.Distro{}, StateDir: t.TempDir(),
		Provisioner: &fakechroot.Inspector{},
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, plugin.Deps{Cloud: f.cloud, Logger: log})}
	return f
}

// aarch64Handler and x86Handler are qemu-user-static's binfmt_misc
// handlers, with the F flag.
const (
	aarch64Handler = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n" +
		"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	x86Handler = "enabled\ninterpreter /usr/libexec/qemu-binfmt/x86_64-binfmt-P\nflags: POCF\noffset 0\n" +
		"magic 7f454c4602010100000000000000000002003e00\nmask fffffffdfffefefefffffffffffffffffeffffff\n"
)

func (f *archFakes) bake(t *testing.T, req bake.Request, o ArchesOptions) (*ArchesResult, error) {
	t.Helper()
	if req.Package == "" {
		req.Package = "hello"
	}
	if req.BaseName == "" && req.BaseID == "" && o.Bases == nil {
		req.BaseName = "base"
	}
	if o.Arches == nil {
		o.Arches = []string{"x86_64", "arm64"}
	}
	req.Creator = "me"
	j := &Job{ID: "bake-test", Kind: "bake", Log: slog.New(slog.DiscardHandler)}
	return j.BakeArches(context.Background(), f.env, req, o)
}

// only checks the cloud holds the bases and, besides them, exactly want
// images, and no volume.
func (f *archFakes) only(t *testing.T, want int) {
	t.Helper()
	if ims, vols := f.cloud.Images(), f.cloud.Volumes(); len(ims) != 3+want || len(vols) != 0 {
		t.Errorf("the cloud holds %d images and %d volumes; want the 3 bases and %d, no volume", len(ims), len(vols), want)
	}
	if snaps := f.cloud.Snapshots(); len(snaps) != 3+want {
		t.Errorf("the cloud holds %d snapshots; want %d", len(snaps), 3+want)
	}
}

// failArm64AfterX86 makes the arm64 bake fail at registration once the
// x86_64 image is registered.
func (f *archFakes) failArm64AfterX86(t *testing.T) {
	f.hook = func(call string) error {
		if !strings.HasPrefix(call, "RegisterImage ") || !strings.Contains(call, "-arm64-") {
			return nil
		}
		for !slicesContain(f.cloud.Images(), "-x86_64-") {
			select {
			case <-t.Context().Done():
				return t.Context().Err()
			default:
			}
		}
		return errors.New("injected failure of the arm64 registration")
	}
}

func slicesContain(ims []*plugin.Image, part string) bool {
	for _, im := range ims {
		if strings.Contains(im.Name, part) {
			return true
		}
	}
	return false
}

// One request, two architectures: each image on the newest base of its
// architecture, the same appversion, one arch_group, each naming the
// other.
func TestBakeArches(t *testing.T) {
	f := newArchFakes(t)
	res, err := f.bake(t, bake.Request{}, ArchesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Image == nil || res.Image.ID != res.Images[0].ID {
		t.Fatalf("images %v, image %v", res.Images, res.Image)
	}
	x, a := res.Images[0], res.Images[1]
	if x.Architecture != "x86_64" || a.Architecture != "arm64" {
		t.Errorf("architectures %s, %s", x.Architecture, a.Architecture)
	}
	if x.Tags["base_ami_id"] != f.x86.ID || a.Tags["base_ami_id"] != f.arm64.ID {
		t.Errorf("bases %s, %s; want the newest of each architecture, %s and %s", x.Tags["base_ami_id"], a.Tags["base_ami_id"], f.x86.ID, f.arm64.ID)
	}
	if x.Tags["appversion"] != "hello-1.0-1" || a.Tags["appversion"] != x.Tags["appversion"] {
		t.Errorf("appversions %q, %q", x.Tags["appversion"], a.Tags["appversion"])
	}
	if x.Tags[naming.TagArchGroup] != "bake-test" || a.Tags[naming.TagArchGroup] != "bake-test" || res.Group != "bake-test" {
		t.Errorf("arch_group %q, %q, result %q", x.Tags[naming.TagArchGroup], a.Tags[naming.TagArchGroup], res.Group)
	}
	if x.Tags[naming.TagArchSiblings] != "arm64:"+a.ID || a.Tags[naming.TagArchSiblings] != "x86_64:"+x.ID {
		t.Errorf("arch_siblings %q, %q", x.Tags[naming.TagArchSiblings], a.Tags[naming.TagArchSiblings])
	}
	if !strings.Contains(x.Name, "-x86_64-") || !strings.Contains(a.Name, "-arm64-") {
		t.Errorf("names %s, %s", x.Name, a.Name)
	}
	f.only(t, 2)
}

// Each architecture's bake holds a lock named after its own id while it
// runs, as a job does, so gc leaves what it tagged alone.
func TestBakeArchesHoldJobLocks(t *testing.T) {
	f := newArchFakes(t)
	lockDir := t.TempDir()
	held := map[string]bool{}
	f.hook = func(call string) error {
		if strings.HasPrefix(call, "RegisterImage ") {
			for _, a := range []string{"x86_64", "arm64"} {
				l, err := flock.TryExclusive(filepath.Join(lockDir, "bake-test-"+a+".lock"))
				if err == nil {
					l.Unlock()
				}
				if strings.Contains(call, "-"+a+"-") {
					held[a] = err != nil
				}
			}
		}
		return nil
	}
	j := &Job{ID: "bake-test", Kind: "bake", Log: slog.New(slog.DiscardHandler), Config: &config.Config{LockDir: lockDir}}
	if _, err := j.BakeArches(context.Background(), f.env, bake.Request{Package: "hello", BaseName: "base", Creator: "me"}, ArchesOptions{Arches: []string{"x86_64", "arm64"}}); err != nil {
		t.Fatal(err)
	}
	if !held["x86_64"] || !held["arm64"] {
		t.Errorf("locks held while registering: %v", held)
	}
}

// With -n both images take the name, each with its architecture.
func TestBakeArchesNamed(t *testing.T) {
	f := newArchFakes(t)
	res, err := f.bake(t, bake.Request{Name: "web", Suffix: "s1"}, ArchesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Images[0].Name != "web-s1-x86_64" || res.Images[1].Name != "web-s1-arm64" {
		t.Errorf("names %s, %s", res.Images[0].Name, res.Images[1].Name)
	}
}

// A failure of one architecture fails the request and removes the image
// the other made.
func TestBakeArchesFailureRemovesSibling(t *testing.T) {
	f := newArchFakes(t)
	f.failArm64AfterX86(t)
	res, err := f.bake(t, bake.Request{}, ArchesOptions{})
	if err == nil || !strings.Contains(err.Error(), "arm64: ") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err %v", err)
	}
	if len(res.Images) != 0 || !res.Bakes[0].Removed || res.Bakes[1].Error == "" {
		t.Errorf("result %+v", res.Bakes)
	}
	f.only(t, 0)
}

// A failure before the other has registered cancels it: nothing is left.
func TestBakeArchesFailureCancelsSibling(t *testing.T) {
	f := newArchFakes(t)
	f.hook = func(call string) error {
		if call == "Volumes.Create "+f.arm64.ID {
			return errors.New("injected failure of the arm64 volume")
		}
		return nil
	}
	if _, err := f.bake(t, bake.Request{}, ArchesOptions{}); err == nil {
		t.Fatal("the request succeeded")
	}
	f.only(t, 0)
}

// --keep-partial keeps the image that baked, tagged with its group, and
// the request still fails.
func TestBakeArchesKeepPartial(t *testing.T) {
	f := newArchFakes(t)
	f.failArm64AfterX86(t)
	res, err := f.bake(t, bake.Request{}, ArchesOptions{KeepPartial: true})
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err %v", err)
	}
	if len(res.Images) != 1 || res.Images[0].Architecture != "x86_64" || res.Images[0].Tags[naming.TagArchGroup] != "bake-test" {
		t.Fatalf("images %v", res.Images)
	}
	if _, ok := res.Images[0].Tags[naming.TagArchSiblings]; ok {
		t.Errorf("a kept image names a sibling that does not exist: %v", res.Images[0].Tags)
	}
	f.only(t, 1)
}

// What a bake for several architectures cannot do is refused before any
// work, as a usage error.
func TestBakeArchesRefused(t *testing.T) {
	f := newArchFakes(t)
	for _, tc := range []struct {
		what string
		req  bake.Request
		o    ArchesOptions
		want string
	}{
		{"-B", bake.Request{BaseID: f.x86.ID}, ArchesOptions{}, "give -b FAMILY"},
		{"-V", bake.Request{VolumeID: "vol-1"}, ArchesOptions{}, "one volume per architecture"},
		{"-i", bake.Request{Interactive: true}, ArchesOptions{}, "opens one shell"},
		{"one arch", bake.Request{}, ArchesOptions{Arches: []string{"arm64"}}, "two or more"},
		{"no i386 base", bake.Request{}, ArchesOptions{Arches: []string{"x86_64", "i386"}}, `no i386 image of family "base"`},
		{"a resolved base of another arch", bake.Request{}, ArchesOptions{Bases: map[string]string{"x86_64": f.x86.ID, "arm64": f.x86.ID}}, "for arm64 is x86_64"},
		{"a reserved tag", bake.Request{Tags: map[string]string{naming.TagArchGroup: "x"}}, ArchesOptions{}, "set by aminator"},
	} {
		_, err := f.bake(t, tc.req, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.what, err, tc.want)
		}
		var ue *bake.UsageError
		if tc.what != "no i386 base" && !errors.As(err, &ue) {
			t.Errorf("%s: %v is not a usage error", tc.what, err)
		}
	}
	f.only(t, 0)
}

// Bases resolved before (the bakery's) are the ones baked on, whatever
// is newer now.
func TestBakeArchesGivenBases(t *testing.T) {
	f := newArchFakes(t)
	res, err := f.bake(t, bake.Request{}, ArchesOptions{Bases: map[string]string{"x86_64": f.oldX86.ID, "arm64": f.arm64.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Images[0].Tags["base_ami_id"] != f.oldX86.ID {
		t.Errorf("baked on %s, want %s", res.Images[0].Tags["base_ami_id"], f.oldX86.ID)
	}
}

// Each architecture's stages are named after it, so two bakes' stage
// lines at once do not mix: "stage arm64: provision" stage="arm64: provision".
func TestArchStages(t *testing.T) {
	var buf strings.Builder
	log := slog.New(archStages{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), "arm64"})
	log.Info("stage provision", "stage", "provision")
	log.Debug("stage done", "stage", "provision", "took", 3)
	log.Info("package installed", "name", "hello")
	out := buf.String()
	for _, want := range []string{`msg="stage arm64: provision" stage="arm64: provision"`, `msg="stage done" stage="arm64: provision" took=3`, `msg="package installed" name=hello`} {
		if !strings.Contains(out, want) {
			t.Errorf("%q is not in\n%s", want, out)
		}
	}
}

// -b FAMILY:LABEL picks the newest image of each architecture carrying
// the label, and records it in base_ami_label.
func TestBakeArchesLabel(t *testing.T) {
	f := newArchFakes(t)
	ctx := context.Background()
	for _, id := range []string{f.oldX86.ID, f.arm64.ID} {
		if err := f.cloud.CreateTags(ctx, id, plugin.Tags{channels.TagChannel: "release"}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.bake(t, bake.Request{BaseName: "base:release"}, ArchesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x, a := res.Images[0], res.Images[1]
	if x.Tags["base_ami_id"] != f.oldX86.ID || a.Tags["base_ami_id"] != f.arm64.ID {
		t.Errorf("bases %s, %s; want the released %s, %s", x.Tags["base_ami_id"], a.Tags["base_ami_id"], f.oldX86.ID, f.arm64.ID)
	}
	if x.Tags["base_ami_label"] != "base:release" || a.Tags["base_ami_label"] != "base:release" {
		t.Errorf("base_ami_label %q, %q", x.Tags["base_ami_label"], a.Tags["base_ami_label"])
	}
}

// The image a failed request removes loses its stored documents too.
func TestBakeArchesFailureRemovesSiblingDocuments(t *testing.T) {
	f := newArchFakes(t)
	cfg := &config.Config{StateDir: t.TempDir(), LockDir: t.TempDir()}
	s := openAttestIn(t, cfg)
	var x86 string
	f.hook = func(call string) error {
		if !strings.HasPrefix(call, "RegisterImage ") || !strings.Contains(call, "-arm64-") {
			return nil
		}
		for x86 == "" {
			for _, im := range f.cloud.Images() {
				if strings.Contains(im.Name, "-x86_64-") {
					x86 = im.ID
				}
			}
			if t.Context().Err() != nil {
				return t.Context().Err()
			}
		}
		putDocs(t, s, x86)
		return errors.New("injected failure of the arm64 registration")
	}
	j := &Job{ID: "bake-test", Kind: "bake", Log: slog.New(slog.DiscardHandler), Config: cfg}
	req := bake.Request{Package: "hello", BaseName: "base", Creator: "me"}
	if _, err := j.BakeArches(context.Background(), f.env, req, ArchesOptions{Arches: []string{"x86_64", "arm64"}}); err == nil {
		t.Fatal("the request succeeded")
	}
	if ids, err := s.Images(context.Background()); x86 == "" || err != nil || len(ids) != 0 {
		t.Errorf("documents of the removed image %s: %v %v", x86, ids, err)
	}
}
