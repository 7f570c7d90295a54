package bake

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fakechroot"
)

// The unit tests of the step list run a whole bake on a fake cloud and a
// fake chroot, as an ordinary user: every call of both is recorded in one
// list, so a test says what a bake did, and in which order it undid it.

// Ids the fake cloud gives, in order: the base's snapshot and image, then
// the bake's volume, snapshot and image.
const (
	baseSnap = "snap-00000001"
	baseID   = "ami-00000002"
	vol      = "vol-00000003"
	snap     = "snap-00000004"
	image    = "ami-00000005"
	name     = "hello-1.0-1-x86_64-s-ebs"
)

type fakes struct {
	rec    *fakecloud.Recorder
	cloud  *fakecloud.Cloud
	distro *fakechroot.Distro
	env    *Environment
}

// newFakes is a fake cloud with a base image of 1 GiB, a fake chroot
// whose `install` also leaves an image script, the fake package manager
// (resolving, as apt does) and the real tagging_ebs finalizer.
func newFakes(t *testing.T) *fakes {
	t.Helper()
	f := &fakes{rec: &fakecloud.Recorder{}, cloud: fakecloud.New()}
	f.cloud.AddImage("base-1.0-1-x86_64-b-ebs", 1<<30, plugin.Tags{channels.TagRole: channels.RoleBase, "appversion": "base-1.0-1"})
	f.cloud.Hook = f.rec.Hook
	f.distro = &fakechroot.Distro{Hook: f.rec.Hook, Exec: func(_ context.Context, c *fakechroot.Chroot, r plugin.Run) ([]byte, error) {
		if r.Argv[0] == "install" {
			if err := c.Root().MkdirAll("var/local", 0o755); err != nil {
				return nil, err
			}
			return nil, c.Root().WriteFile("var/local/10-setup.sh", []byte("#!/bin/sh\n"), 0o755)
		}
		return nil, nil
	}}
	log := slog.New(slog.DiscardHandler)
	f.env = &Environment{Name: "fake", Cloud: f.cloud, Volume: f.cloud.VolumePlugin(), Distro: f.distro, StateDir: t.TempDir(),
		Provisioner: &fakechroot.Inspector{},
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, plugin.Deps{Cloud: f.cloud, Logger: log})}
	return f
}

func (f *fakes) bake(ctx context.Context, t *testing.T, req Request) (*Result, error) {
	t.Helper()
	if req.Package == "" {
		req.Package = "hello"
	}
	req.BaseID, req.Suffix, req.Creator, req.BakeID = baseID, "s", "me", "bake-1"
	return Run(ctx, f.env, req, slog.New(slog.DiscardHandler))
}

// work drops the Host calls, which only ask, from a list of calls.
func work(calls []string) []string {
	return slices.DeleteFunc(calls, func(c string) bool { return c == "Host" })
}

// nothingLeft checks that the cloud holds only the base, and every chroot
// was closed.
func (f *fakes) nothingLeft(t *testing.T, what string) {
	t.Helper()
	if ims, snaps, vols := f.cloud.Images(), f.cloud.Snapshots(), f.cloud.Volumes(); len(ims) != 1 || len(snaps) != 1 || len(vols) != 0 {
		t.Errorf("%s: left %d images, %d snapshots, %d volumes; want the base only", what, len(ims), len(snaps), len(vols))
	}
	for _, c := range f.distro.Chroots() {
		if !c.Closed() {
			t.Errorf("%s: the chroot at %s is not closed", what, c.Path())
		}
	}
}

// The seed's five operations, in order, each on what the one before made;
// the volume is released at the end; the image carries the tag rules'
// tags and the snapshot the bake's id.
func TestBakeSteps(t *testing.T) {
	f := newFakes(t)
	res, err := f.bake(context.Background(), t, Request{Tags: map[string]string{"team": "core"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Image " + baseID, "Snapshot " + baseSnap, // resolve base, size volume
		"Volumes.Create " + baseID, "Volumes.Attach " + vol, "Enter " + vol,
		"Chroot.Output resolve hello", "Image " + name, // the name checked before installing
		"Chroot.Run install hello=1.0-1", "Chroot.Run /var/local/10-setup.sh", "Chroot.Output manifest",
		"Chroot.Close " + vol, "CreateSnapshot " + vol, "RegisterImage " + name,
		"Volumes.Detach " + vol, "Volumes.Delete " + vol,
	}
	if got := work(f.rec.Calls()); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
	var stages []string
	for _, tm := range res.Timings {
		stages = append(stages, tm.Stage)
	}
	// The console and the benchmarks know these names.
	if want := []string{"resolve base", "create volume", "attach volume", "mount", "resolve package", "provision", "scripts", "manifest", "clean image", "unmount", "snapshot and register"}; !reflect.DeepEqual(stages, want) {
		t.Errorf("stages %q, want %q", stages, want)
	}
	if res.Image == nil || res.Image.ID != image || res.Image.Name != name || res.Package.FullVersion != "1.0-1" || res.Base.ID != baseID {
		t.Fatalf("result %+v", res)
	}
	im, snaps := f.cloud.Images()[1], f.cloud.Snapshots()
	wantImage, wantSnap := Tags(TagInput{Request: Request{Creator: "me", BakeID: "bake-1", Suffix: "s", Tags: map[string]string{"team": "core"}},
		Base: res.Base, Fields: f.env.fieldsOf(res.Package), Host: &f.cloud.HostInfo})
	delete(wantImage, "creation_time")
	if _, err := time.Parse("2006-01-02 15:04:05 UTC", im.Tags["creation_time"]); err != nil {
		t.Errorf("creation_time %q: %v", im.Tags["creation_time"], err)
	}
	delete(im.Tags, "creation_time")
	if !reflect.DeepEqual(im.Tags, wantImage) || !reflect.DeepEqual(snaps[1].Tags, wantSnap) {
		t.Errorf("image tags %v\nsnapshot tags %v", im.Tags, snaps[1].Tags)
	}
	if root := im.Root(); root == nil || root.SnapshotID != snap || root.VolumeType != "gp3" || root.VolumeSizeGiB != 1 {
		t.Errorf("root mapping %+v", root)
	}
	if len(f.cloud.Volumes()) != 0 || !f.distro.Chroots()[0].Closed() {
		t.Error("the volume or the chroot is left")
	}
}

// What the package left that must not ship is gone from the image by the
// time it is unmounted: the host keys its sshd made (a first-boot unit
// makes them per instance), apt's log, a script's temporary file. What the
// package installed stays.
func TestBakeCleansImage(t *testing.T) {
	f := newFakes(t)
	var mnt string
	exec := f.distro.Exec
	f.distro.Exec = func(ctx context.Context, c *fakechroot.Chroot, r plugin.Run) ([]byte, error) {
		mnt = c.Path()
		if r.Argv[0] == "install" {
			for rel, content := range map[string]string{"usr/sbin/sshd": "elf", "etc/ssh/ssh_host_ed25519_key": "key",
				"var/log/apt/history.log": "Commandline: apt-get install hello", "tmp/setup.tmp": "x"} {
				if err := c.Root().MkdirAll(filepath.Dir(rel), 0o755); err != nil {
					return nil, err
				}
				if err := c.Root().WriteFile(rel, []byte(content), 0o600); err != nil {
					return nil, err
				}
			}
		}
		return exec(ctx, c, r)
	}
	f.rec.On("Chroot.Close "+vol, func() {
		for _, rel := range []string{"etc/ssh/ssh_host_ed25519_key", "var/log/apt/history.log", "tmp/setup.tmp"} {
			if _, err := os.Lstat(filepath.Join(mnt, rel)); !os.IsNotExist(err) {
				t.Errorf("/%s is in the image at unmount: %v", rel, err)
			}
		}
		for _, rel := range []string{"usr/sbin/sshd", "var/local/10-setup.sh", "etc/systemd/system/aminator-ssh-host-keys.service"} {
			if _, err := os.Lstat(filepath.Join(mnt, rel)); err != nil {
				t.Errorf("/%s is not in the image: %v", rel, err)
			}
		}
	})
	if _, err := f.bake(context.Background(), t, Request{}); err != nil {
		t.Fatal(err)
	}
	if mnt == "" {
		t.Fatal("nothing ran in the chroot")
	}
}

// fieldsOf are the name fields a bake in this environment makes of pkg.
func (e *Environment) fieldsOf(pkg *plugin.PackageInfo) naming.Fields {
	s := &State{Env: e, Req: Request{Suffix: "s"}, Arch: "x86_64"}
	return s.fields(pkg)
}

// A failure at any step undoes exactly what was done, in reverse, and
// leaves nothing; a failed undo (unmount) is tried again at the end.
func TestFailureAtEachStepUndoes(t *testing.T) {
	release := []string{"Volumes.Detach " + vol, "Volumes.Delete " + vol}
	unmount := append([]string{"Chroot.Close " + vol}, release...)
	for _, tc := range []struct {
		fail  string
		req   Request
		stage string
		undo  []string
	}{
		{"Image " + baseID, Request{}, "resolve base", nil},
		{"Snapshot " + baseSnap, Request{}, "base image", nil},
		{"Volumes.Create", Request{}, "create volume", nil},
		{"Volumes.Attach", Request{}, "attach volume", []string{"Volumes.Delete " + vol}},
		{"Volumes.Grow", Request{RootVolumeGiB: 2}, "grow filesystem", release},
		{"Enter", Request{}, "mount", release},
		{"Volumes.GrowMounted", Request{RootVolumeGiB: 2}, "grow mounted filesystem", unmount},
		{"Chroot.Output resolve", Request{}, "resolve package", unmount},
		{"Image " + name, Request{}, "injected", unmount},
		{"Chroot.Run install", Request{}, "provision", unmount},
		{"Chroot.Run /var/local/10-setup.sh", Request{}, "scripts", unmount},
		{"Chroot.Output manifest", Request{}, "manifest", unmount},
		{"Chroot.Close", Request{}, "unmount", unmount},
		{"CreateSnapshot", Request{}, "snapshot and register", release},
		{"RegisterImage", Request{}, "snapshot and register", append([]string{"DeleteSnapshot " + snap}, release...)},
		{"Distribute", Request{Distribution: plugin.Distribution{CopyTo: []string{"us-west-2"}}}, "distribute",
			append([]string{"DeregisterImage " + image, "DeleteSnapshot " + snap}, release...)},
	} {
		f := newFakes(t)
		f.rec.FailOn(tc.fail, nil)
		res, err := f.bake(context.Background(), t, tc.req)
		if err == nil || !strings.Contains(err.Error(), "injected failure of "+tc.fail) || !strings.Contains(err.Error(), tc.stage) {
			t.Errorf("failing %s: %v, want the injected failure, in %s", tc.fail, err, tc.stage)
		}
		if got := work(f.rec.After(tc.fail)); !reflect.DeepEqual(got, tc.undo) && !(len(got) == 0 && len(tc.undo) == 0) {
			t.Errorf("failing %s: then\n got %q\nwant %q", tc.fail, got, tc.undo)
		}
		f.nothingLeft(t, "failing "+tc.fail)
		// The result names the image as soon as it is registered, even
		// when distributing it fails and it is deregistered again.
		if (res.Image != nil) != (tc.fail == "Distribute") || len(res.Preserved) != 0 {
			t.Errorf("failing %s: result %+v", tc.fail, res)
		}
	}
}

// --preserve-on-error keeps the volume attached and the chroot mounted,
// and says how to remove them; the rest is undone.
func TestPreserveOnErrorKeeps(t *testing.T) {
	f := newFakes(t)
	f.rec.FailOn("Chroot.Run install", nil)
	res, err := f.bake(context.Background(), t, Request{PreserveOnError: true})
	if err == nil {
		t.Fatal("the bake did not fail")
	}
	if got := work(f.rec.After("Chroot.Run install")); !reflect.DeepEqual(got, []string{"Chroot.Preserve " + vol}) {
		t.Errorf("then %q, want only the chroot preserved", got)
	}
	mnt := filepath.Join(f.env.StateDir, "mnt", vol)
	if want := []string{"umount -R " + mnt, "the volume is detached once it is unmounted", "aminate volumes rm " + vol}; !reflect.DeepEqual(res.Preserved, want) {
		t.Errorf("hints %q, want %q", res.Preserved, want)
	}
	if vols := f.cloud.Volumes(); len(vols) != 1 || vols[0].State != "in-use" {
		t.Errorf("volumes %+v, want the bake's, attached", vols)
	}
	if c := f.distro.Chroots()[0]; c.Closed() || !c.Preserved() {
		t.Error("the chroot is not kept")
	}
}

// A dry run resolves the base and checks the name, and makes nothing.
func TestDryRunMakesNothing(t *testing.T) {
	f := newFakes(t)
	res, err := f.bake(context.Background(), t, Request{Package: "hello=2.0-1", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Image " + baseID, "Snapshot " + baseSnap, "Image hello-2.0-1-x86_64-s-ebs"}; !reflect.DeepEqual(work(f.rec.Calls()), want) {
		t.Errorf("calls %q, want %q", f.rec.Calls(), want)
	}
	if res.Plan == nil || res.Plan.Name != "hello-2.0-1-x86_64-s-ebs" || res.Plan.VolumeBytes != 1<<30 || res.Image != nil {
		t.Errorf("plan %+v", res.Plan)
	}
	f.nothingLeft(t, "dry run")
}

// Cancelled in the middle of a step, or between two, a bake stops, runs
// no further stage and undoes what it made.
func TestCancelledBakeUndoes(t *testing.T) {
	for _, tc := range []struct {
		at   string
		undo []string
	}{
		{"Chroot.Run install", []string{"Chroot.Close " + vol, "Volumes.Detach " + vol, "Volumes.Delete " + vol}},
		{"Volumes.Attach", []string{"Volumes.Detach " + vol, "Volumes.Delete " + vol}}, // the attach went through: mount never starts
		{"RegisterImage", []string{"DeregisterImage " + image, "DeleteSnapshot " + snap, "Volumes.Detach " + vol, "Volumes.Delete " + vol}},
	} {
		f := newFakes(t)
		ctx, cancel := context.WithCancel(context.Background())
		f.rec.On(tc.at, cancel)
		res, err := f.bake(ctx, t, Request{})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled at %s: %v, want context.Canceled", tc.at, err)
		}
		if got := work(f.rec.After(tc.at)); !reflect.DeepEqual(got, tc.undo) {
			t.Errorf("cancelled at %s: then\n got %q\nwant %q", tc.at, got, tc.undo)
		}
		f.nothingLeft(t, "cancelled at "+tc.at)
		if res.Image != nil {
			t.Errorf("cancelled at %s: an image in the result", tc.at)
		}
	}
}

// The optional steps run when asked: adopting a volume (never deleted,
// detached only if the bake attached it), growing, the interactive shell
// (whose failure is only a warning) and distributing.
func TestOptionalSteps(t *testing.T) {
	ctx := context.Background()
	f := newFakes(t)
	res, err := f.bake(ctx, t, Request{RootVolumeGiB: 2, Interactive: true, Distribution: plugin.Distribution{CopyTo: []string{"us-west-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(work(f.rec.Calls()), "\n")
	for _, want := range []string{
		"Volumes.Attach " + vol + "\nVolumes.Grow " + vol + "\nEnter " + vol + "\nVolumes.GrowMounted\n",
		"Chroot.Run /var/local/10-setup.sh\nChroot.Run /bin/sh -l\nChroot.Output manifest",
		"RegisterImage " + name + "\nDistribute " + image + "\nVolumes.Detach",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("calls lack %q:\n%s", want, calls)
		}
	}
	if len(res.Copies) != 2 || res.Copies[1].Region != "us-west-2" || res.Image.Root().VolumeSizeGiB != 2 {
		t.Errorf("result %+v", res)
	}

	for _, attached := range []bool{false, true} {
		f = newFakes(t)
		f.cloud.Hook = nil // made before the bake, by someone else
		v, _ := f.cloud.VolumePlugin().Create(ctx, nil, 4<<30, nil)
		if attached {
			f.cloud.VolumePlugin().Attach(ctx, v, "")
		}
		f.cloud.Hook = f.rec.Hook
		f.rec.FailOn("Chroot.Run /bin/sh", nil)
		res, err := f.bake(ctx, t, Request{VolumeID: v.ID, RootVolumeGiB: 2, Interactive: true})
		if err != nil {
			t.Fatalf("adopting (attached %v) with a failing shell: %v", attached, err)
		}
		calls := work(f.rec.Calls())
		if slices.Contains(calls, "Volumes.Delete "+v.ID) || slices.Contains(calls, "Volumes.Attach "+v.ID) != !attached ||
			slices.Contains(calls, "Volumes.Detach "+v.ID) != !attached || !slices.Contains(calls, "Volumes.Grow "+v.ID) {
			t.Errorf("adopting (attached %v): calls %q", attached, calls)
		}
		if vols := f.cloud.Volumes(); len(vols) != 1 || (vols[0].State == "in-use") != attached {
			t.Errorf("adopting (attached %v): the volume is %+v", attached, vols)
		}
		if res.Image.Root().VolumeSizeGiB != 4 {
			t.Errorf("adopting: the image's root is %d GiB, want the volume's 4", res.Image.Root().VolumeSizeGiB)
		}
	}
}

// A provisioner that reads the installed packages with the package (as
// apt's does) has its list taken as the manifest when nothing ran in the
// image since; after an image script (which may install more) or the
// shell, the manifest is read again.
func TestManifestFromProvision(t *testing.T) {
	for _, tc := range []struct {
		what       string
		script     bool
		req        Request
		wantManual bool
	}{
		{"nothing ran", false, Request{}, false},
		{"an image script ran", true, Request{}, true},
		{"the shell ran", false, Request{Interactive: true}, true},
	} {
		f := newFakes(t)
		f.env.Provisioner = &fakechroot.Inspector{Provisioner: fakechroot.Provisioner{ListInstalled: true}}
		if !tc.script {
			f.distro.Exec = nil // the install leaves no image script
		}
		if _, err := f.bake(context.Background(), t, tc.req); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if got := slices.Contains(work(f.rec.Calls()), "Chroot.Output manifest"); got != tc.wantManual {
			t.Errorf("%s: manifest read again %v, want %v", tc.what, got, tc.wantManual)
		}
	}
	s := &State{Package: &plugin.PackageInfo{Installed: []plugin.Package{{Name: "hello", Version: "1.0-1"}}}}
	if err := (manifest{}).Run(context.Background(), s); err != nil || len(s.Manifest) != 1 || s.Manifest[0].Name != "hello" {
		t.Errorf("manifest %+v %v", s.Manifest, err)
	}
}

// A provisioner that cannot resolve has the name checked right after the
// install; a taken name is a usage error, and the bake undone.
func TestNameCheckedAfterInstall(t *testing.T) {
	f := newFakes(t)
	f.env.Provisioner = &fakechroot.Provisioner{}
	f.cloud.AddImage(name, 1<<30, nil)
	_, err := f.bake(context.Background(), t, Request{})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "pick another name") {
		t.Errorf("%v, want a usage error", err)
	}
	if got := work(f.rec.After("Chroot.Run install")); len(got) < 1 || got[0] != "Image "+name {
		t.Errorf("after the install: %q, want the name checked", got)
	}
	if ims := f.cloud.Images(); len(ims) != 2 {
		t.Errorf("%d images, want the base and the one taking the name", len(ims))
	}
	if vols := f.cloud.Volumes(); len(vols) != 0 {
		t.Errorf("volumes left: %+v", vols)
	}
}
