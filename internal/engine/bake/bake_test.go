package bake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/channels"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/testutil"

	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
)

// noVolumes fails the test if a bake makes, adopts or attaches a volume:
// everything tested here must be refused before any work.
type noVolumes struct{ t *testing.T }

func (n noVolumes) fail() { n.t.Helper(); n.t.Error("the bake did work: it touched a volume") }
func (n noVolumes) Create(context.Context, *plugin.Image, int64, plugin.Tags) (*plugin.Volume, error) {
	n.fail()
	return nil, errors.New("no volumes here")
}
func (n noVolumes) Attach(context.Context, *plugin.Volume, string) (string, error) {
	n.fail()
	return "", errors.New("no volumes here")
}
func (n noVolumes) Adopt(context.Context, string) (*plugin.Volume, string, error) {
	n.fail()
	return nil, "", errors.New("no volumes here")
}
func (n noVolumes) Grow(context.Context, string, int) error      { return nil }
func (n noVolumes) GrowMounted(context.Context, string) error    { return nil }
func (n noVolumes) Detach(context.Context, *plugin.Volume) error { return nil }
func (n noVolumes) Delete(context.Context, *plugin.Volume) error { return nil }

// testEnv is a local cloud with one base image, the apt provisioner and
// the tagging finalizer, and no volumes.
func testEnv(t *testing.T) (*Environment, *local.Cloud, *plugin.Image) {
	t.Helper()
	dir := t.TempDir()
	c, err := local.Open(local.Options{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	base, err := c.Import(context.Background(), raw, local.ImportOptions{Name: "base", Architecture: "x86_64", VirtualizationType: "hvm",
		Tags: plugin.Tags{channels.TagRole: channels.RoleBase}})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	d := plugin.Deps{Logger: log, StateDir: dir, Cloud: c}
	env := &Environment{Name: "test", Cloud: c, Volume: noVolumes{t}, StateDir: dir,
		Provisioner: testutil.NewPlugin[plugin.Provisioner](t, plugin.KindProvisioner, "apt", nil, d),
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, d)}
	return env, c, base
}

func run(t *testing.T, env *Environment, req Request) (*Result, error) {
	t.Helper()
	if req.Creator == "" {
		req.Creator = "tester"
	}
	return Run(context.Background(), env, req, slog.New(slog.DiscardHandler))
}

func wantUsage(t *testing.T, what string, err error, text string) {
	t.Helper()
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), text) {
		t.Errorf("%s: %v, want a usage error saying %q", what, err, text)
	}
}

// Inputs refused before any work, each with a usage error that says why.
func TestRefusedInputs(t *testing.T) {
	env, _, base := testEnv(t)
	many := map[string]string{}
	for i := 0; i < 200; i++ {
		many[fmt.Sprintf("k%03d", i)] = "v"
	}
	for _, tc := range []struct {
		what string
		req  Request
		want string
	}{
		{"-B and -b", Request{BaseID: base.ID, BaseName: "base"}, "mutually exclusive"},
		{"creator tag", Request{BaseID: base.ID, Tags: map[string]string{"creator": "x"}}, `tag "creator" is set by aminator; use -c/--creator instead`},
		{"channel tag", Request{BaseID: base.ID, Tags: map[string]string{"channel": "release"}}, "aminate images promote"},
		{"pushed: tag", Request{BaseID: base.ID, Tags: map[string]string{"pushed:us-east-1": "ami-1"}}, "aminate push"},
		{"200 tags", Request{BaseID: base.ID, Tags: many}, "the cloud takes at most 50, so give at most"},
		{"10 KB value", Request{BaseID: base.ID, Tags: map[string]string{"big": strings.Repeat("x", 10<<10)}}, "10240 characters; the cloud takes at most 256"},
		{"aws: key", Request{BaseID: base.ID, Tags: map[string]string{"aws:x": "y"}}, "reserved by the cloud"},
		{"long creator", Request{BaseID: base.ID, Creator: strings.Repeat("c", 300)}, "(set with -c/--creator)"},
		{"not a deb", Request{BaseID: base.ID, Package: "/etc/hostname.deb"}, ""},
	} {
		if tc.req.Package == "" {
			tc.req.Package = "hello=2.10-3"
		}
		if tc.what == "not a deb" {
			f := filepath.Join(t.TempDir(), "junk.deb")
			os.WriteFile(f, []byte("not a package"), 0o644)
			tc.req.Package, tc.want = f, "is not a readable .deb"
		}
		_, err := run(t, env, tc.req)
		wantUsage(t, tc.what, err, tc.want)
	}
	// The most a bake takes: 50 minus its own tags on the image (here 13:
	// 8 of lineage, boot, creation_time, and promote's and test's 3).
	ok := map[string]string{}
	for i := 0; i < 50-13; i++ {
		ok[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", 256)
	}
	if _, err := run(t, env, Request{BaseID: base.ID, Package: "hello=2.10-3", Tags: ok, DryRun: true}); err != nil {
		t.Errorf("37 tags of 256 characters: %v", err)
	}
	ok["one-more"] = "v"
	_, err := run(t, env, Request{BaseID: base.ID, Package: "hello=2.10-3", Tags: ok, DryRun: true})
	wantUsage(t, "38 tags", err, "give at most 37")
}

// The default name, made from a package file's version or a version
// given, is checked before any work, in a dry run too; a repository
// package's is left to the bake.
func TestNameCheckedFirst(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	env, c, base := testEnv(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-unit", Version: "1:2.0-4"})
	res, err := run(t, env, Request{BaseID: base.ID, Package: deb, Suffix: "s", DryRun: true})
	if err != nil || res.Plan.Name != "aminator-unit-2.0-4-x86_64-s-ebs" {
		t.Fatalf("dry run: %+v %v", res.Plan, err)
	}
	res, err = run(t, env, Request{BaseID: base.ID, Package: "hello=2.10-3", Suffix: "s", DryRun: true})
	if err != nil || res.Plan.Name != "hello-2.10-3-x86_64-s-ebs" {
		t.Fatalf("dry run, a given version: %+v %v", res.Plan, err)
	}
	res, err = run(t, env, Request{BaseID: base.ID, Package: "hello", Suffix: "s", DryRun: true})
	if err != nil || res.Plan.Name != "" {
		t.Fatalf("dry run, a repository package: %+v %v", res.Plan, err)
	}
	for _, name := range []string{"aminator-unit-2.0-4-x86_64-s-ebs", "hello-2.10-3-x86_64-s-ebs"} {
		if _, err := c.RegisterImage(context.Background(), plugin.ImageRequest{Name: name, RootDeviceName: "/dev/sda1",
			BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: base.Root().SnapshotID}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dry := range []bool{true, false} {
		_, err = run(t, env, Request{BaseID: base.ID, Package: deb, Suffix: "s", DryRun: dry})
		wantUsage(t, fmt.Sprintf("taken, dry run %v", dry), err, `"aminator-unit-2.0-4-x86_64-s-ebs"`)
		_, err = run(t, env, Request{BaseID: base.ID, Package: "hello=2.10-3", Suffix: "s", DryRun: dry})
		wantUsage(t, fmt.Sprintf("taken, a given version, dry run %v", dry), err, "pick another name with -n or -s")
	}
}
