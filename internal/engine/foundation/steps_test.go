package foundation

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/partition"
	"github.com/aminator-go/aminator/internal/testutil"

	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
)

// fakeHost bootstraps a tiny tree (two packages, a kernel unless noKernel)
// and only records partitioning and making filesystems, so a foundation's
// list runs as an ordinary user.
type fakeHost struct {
	hook     func(string) error
	noKernel bool
}

// fakeTrees are what the fake bootstrap installs of each architecture.
var fakeTrees = map[string]map[string]string{
	"amd64": {"usr/lib/grub/i386-pc/normal.mod": "m", "usr/lib/grub/x86_64-efi/normal.mod": "m", "boot/vmlinuz-6.1.0-9-amd64": "k"},
	"arm64": {"usr/lib/grub/arm64-efi/normal.mod": "m", "boot/vmlinuz-6.1.0-9-cloud-arm64": "k"},
}

const status = `Package: base-files
Status: install ok installed
Maintainer: m
Description: d
Version: 12.4
Architecture: amd64

Package: bash
Status: install ok installed
Maintainer: m
Description: d
Version: 5.2-1
Architecture: amd64
`

func (h fakeHost) Bootstrap(_ context.Context, o Options, _, tree string) error {
	if err := h.hook("Host.Bootstrap " + o.Release); err != nil {
		return err
	}
	files := map[string]string{"var/lib/dpkg/status": status, "etc/hostname": "builder\n", "var/lib/apt/lists/x_Packages": "p"}
	for rel, content := range fakeTrees[debArch[o.Arch]] {
		if !h.noKernel || !strings.HasPrefix(rel, "boot/") {
			files[rel] = content
		}
	}
	for rel, content := range files {
		p := filepath.Join(tree, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (h fakeHost) Partition(_ context.Context, dev, table string) error {
	return h.hook("Host.Partition " + filepath.Base(dev))
}

func (h fakeHost) MakeESP(_ context.Context, dev, _, kernel, _, _, _ string) error {
	return h.hook("Host.MakeESP " + kernel)
}

func (h fakeHost) InstallGRUB(_ context.Context, o Options, dev, tree, _, _, _ string) error {
	if _, err := os.Stat(filepath.Join(tree, "boot/grub/grub.cfg")); err != nil {
		return err
	}
	for _, p := range grubPlatforms(o.Arch, o.Layout) {
		if _, err := os.Stat(filepath.Join(tree, "boot/grub", p, "normal.mod")); err != nil {
			return err
		}
	}
	return h.hook("Host.InstallGRUB " + o.Arch + " " + o.Layout)
}

func (h fakeHost) MakeFS(_ context.Context, dev string, part int, fstype, _, tree, _ string) error {
	if _, err := os.Stat(filepath.Join(tree, "etc/fstab")); err != nil {
		return err
	}
	return h.hook("Host.MakeFS " + fstype)
}

type fakes struct {
	rec     *fakecloud.Recorder
	cloud   *fakecloud.Cloud
	env     *bake.Environment
	scratch string
	host    fakeHost
}

func newFakes(t *testing.T) *fakes {
	t.Helper()
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query is not installed")
	}
	f := &fakes{rec: &fakecloud.Recorder{}, cloud: fakecloud.New(), scratch: t.TempDir()}
	f.cloud.Hook, f.host.hook = f.rec.Hook, f.rec.Hook
	fin := testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, plugin.Deps{Cloud: f.cloud, Logger: slog.New(slog.DiscardHandler)})
	f.env = &bake.Environment{Name: "fake", Cloud: f.cloud, Volume: f.cloud.VolumePlugin(), StateDir: t.TempDir(), Finalizer: fin}
	return f
}

func (f *fakes) build(t *testing.T, layout string) (*Result, error) {
	t.Helper()
	return f.buildArch(t, layout, "")
}

// buildArch builds for arch ("": x86_64), with binfmt_misc a stand-in
// where one handler for arm64 is registered, as qemu-user-static does.
func (f *fakes) buildArch(t *testing.T, layout, arch string) (*Result, error) {
	t.Helper()
	o := Options{Arch: arch, BinfmtDir: armBinfmt(t), Suffix: "s", Release: "bookworm", Mirror: "http://deb.example/debian", Layout: layout, FS: "ext4", Kernel: true,
		Creator: "me", BakeID: "foundation-1", ScratchDir: f.scratch, Tags: map[string]string{"team": "core"}}
	if layout == "whole" || layout == "gpt" {
		o.Profile = ProfileMinimal
	}
	if layout == "" {
		o.Profile = ProfileCloud
	}
	return build(context.Background(), f.env, o, slog.New(slog.DiscardHandler), f.host)
}

// work drops the Host calls (the cloud's, which only ask).
func work(calls []string) []string {
	return slices.DeleteFunc(calls, func(c string) bool { return c == "Host" })
}

// A uefi foundation runs every step of its list, the bake's among them,
// and registers an image tagged as a foundation; the volume and the
// scratch tree are gone afterwards.
func TestFoundationSteps(t *testing.T) {
	f := newFakes(t)
	res, err := f.build(t, "uefi")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Image debian-bookworm-s", "Host.Bootstrap bookworm", "Volumes.Create", "Volumes.Attach vol-00000001",
		"Host.Partition vol-00000001", "Host.MakeESP 6.1.0-9-amd64", "Host.MakeFS ext4",
		"CreateSnapshot vol-00000001", "RegisterImage debian-bookworm-s", "Volumes.Detach vol-00000001", "Volumes.Delete vol-00000001"}
	if got := work(f.rec.Calls()); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
	var stages []string
	for _, tm := range res.Timings {
		stages = append(stages, tm.Stage)
	}
	if want := []string{"bootstrap", "configure", "create volume", "attach volume", "partition", "boot partition", "make filesystem", "snapshot and register"}; !reflect.DeepEqual(stages, want) {
		t.Errorf("stages %q, want %q", stages, want)
	}
	im := res.Image
	if im == nil || res.Kernel != "6.1.0-9-amd64" || res.Packages != 2 || im.BootMode != "uefi" || im.Root().SnapshotID != "snap-00000002" || im.Root().VolumeSizeGiB != 2 {
		t.Fatalf("result %+v, image %+v", res, im)
	}
	for k, v := range map[string]string{"role": "foundation", "layout": "uefi", "kernel": "6.1.0-9-amd64", "packages": "2", "root_partition": "2", "boot": "uefi", "team": "core"} {
		if im.Tags[k] != v {
			t.Errorf("tag %s=%q, want %q", k, im.Tags[k], v)
		}
	}
	snaps := f.cloud.Snapshots()
	if len(snaps) != 1 || snaps[0].Tags["creation_time"] != "" || snaps[0].Tags["layout"] != "uefi" {
		t.Errorf("snapshot %+v", snaps)
	}
	if ents, _ := os.ReadDir(f.scratch); len(ents) != 0 || len(f.cloud.Volumes()) != 0 {
		t.Errorf("left: scratch %v, volumes %v", ents, f.cloud.Volumes())
	}
}

// A failure at any step undoes what was done, in reverse, and leaves no
// volume, snapshot, image or scratch tree; a whole-disk layout has no
// partition steps to fail.
func TestFoundationFailureUndoes(t *testing.T) {
	const v = "vol-00000001"
	release := []string{"Volumes.Detach " + v, "Volumes.Delete " + v}
	for _, tc := range []struct {
		fail, layout string
		undo         []string
	}{
		{"Host.Bootstrap", "whole", nil},
		{"Volumes.Create", "whole", nil},
		{"Volumes.Attach", "whole", []string{"Volumes.Delete " + v}},
		{"Host.Partition", "gpt", release},
		{"Host.MakeESP", "uefi", release},
		{"Host.InstallGRUB", "hybrid", release},
		{"Host.MakeFS", "whole", release},
		{"CreateSnapshot", "gpt", release},
		{"RegisterImage", "whole", append([]string{"DeleteSnapshot snap-00000002"}, release...)},
	} {
		f := newFakes(t)
		f.rec.FailOn(tc.fail, nil)
		res, err := f.build(t, tc.layout)
		if err == nil || !strings.Contains(err.Error(), "injected failure of "+tc.fail) {
			t.Errorf("failing %s: %v", tc.fail, err)
		}
		if got := work(f.rec.After(tc.fail)); !reflect.DeepEqual(got, tc.undo) && !(len(got) == 0 && len(tc.undo) == 0) {
			t.Errorf("failing %s: then\n got %q\nwant %q", tc.fail, got, tc.undo)
		}
		if ents, _ := os.ReadDir(f.scratch); len(ents) != 0 || len(f.cloud.Volumes()) != 0 || len(f.cloud.Snapshots()) != 0 || len(f.cloud.Images()) != 0 || res.Image != nil {
			t.Errorf("failing %s: left scratch %v, %d volumes, %d snapshots, %d images", tc.fail, ents, len(f.cloud.Volumes()), len(f.cloud.Snapshots()), len(f.cloud.Images()))
		}
	}
	f := newFakes(t)
	if _, err := f.build(t, "whole"); err != nil || slices.ContainsFunc(f.rec.Calls(), func(c string) bool { return strings.HasPrefix(c, "Host.Partition") }) {
		t.Errorf("a whole-disk foundation: %v, calls %q", err, f.rec.Calls())
	}
}

// A bootstrap that installed no kernel, when one was asked for, fails
// before any volume is made.
func TestFoundationWithoutKernelRefused(t *testing.T) {
	f := newFakes(t)
	f.host.noKernel = true
	_, err := f.build(t, "whole")
	if err == nil || !strings.Contains(err.Error(), "installed no kernel") {
		t.Errorf("%v", err)
	}
	if slices.Contains(f.rec.Calls(), "Volumes.Create") {
		t.Error("a volume was made")
	}
}

// A hybrid foundation (the cloud profile's default) partitions the disk as
// Debian's cloud images, writes GRUB's configuration and modules into the
// tree before the filesystem is made, installs both loaders, and registers
// an image that both firmware types boot.
func TestHybridFoundationSteps(t *testing.T) {
	f := newFakes(t)
	res, err := f.build(t, "hybrid")
	if err != nil {
		t.Fatal(err)
	}
	calls := work(f.rec.Calls())
	if i, j := slices.Index(calls, "Host.InstallGRUB x86_64 hybrid"), slices.Index(calls, "Host.MakeFS ext4"); i < 0 || j < i {
		t.Errorf("calls %q: GRUB's loaders before the root filesystem", calls)
	}
	im := res.Image
	for k, v := range map[string]string{"layout": "hybrid", "profile": "cloud", "root_partition": "1", "boot": "bios+uefi"} {
		if im.Tags[k] != v {
			t.Errorf("tag %s=%q, want %q", k, im.Tags[k], v)
		}
	}
	if im.BootMode != "uefi-preferred" {
		t.Errorf("boot mode %q", im.BootMode)
	}
}

// The hybrid partition table is Debian's: BIOS boot 14 and ESP 15 first,
// the root 1 last, so that growpart can grow it.
func TestHybridPartitionTable(t *testing.T) {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("no sfdisk")
	}
	disk := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 2<<30); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader(partitionTable("hybrid"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	parts, err := partition.Read(disk)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]partition.Partition{}
	for _, p := range parts {
		got[p.Number] = p
	}
	if got[14].Type != biosBootType || got[15].Type != espType || got[1].Type != linuxFS {
		t.Fatalf("partitions %+v", parts)
	}
	if got[1].Start+got[1].Size < (2<<30)-(1<<20) || got[14].Start != 1<<20 {
		t.Errorf("root %+v does not reach the end, or bios boot %+v not at 1 MiB", got[1], got[14])
	}
}

// A foundation's work volume carries the build host, as a bake's does, so
// gc on that host finds it after the foundation is killed.
func TestFoundationWorkVolumeNamesItsHost(t *testing.T) {
	f := newFakes(t)
	f.cloud.HostInfo = plugin.Host{InstanceID: "i-build"}
	var tags map[string]string
	f.cloud.Hook = func(call string) error {
		if strings.HasPrefix(call, "Volumes.Attach") {
			if vs := f.cloud.Volumes(); len(vs) == 1 {
				tags = vs[0].Tags
			}
		}
		return f.rec.Hook(call)
	}
	if _, err := f.build(t, "uefi"); err != nil {
		t.Fatal(err)
	}
	if tags[owner.Host] != "i-build" || tags[owner.Bake] != "foundation-1" || tags[owner.Purpose] != owner.PurposeWork {
		t.Errorf("work volume tags %v", tags)
	}
}
