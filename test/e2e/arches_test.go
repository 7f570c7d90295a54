package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

// TestBakeArches: `--arch x86_64,arm64 -b FAMILY` bakes on the newest
// base of each architecture of the family in one job, two images with
// the same appversion linked by arch_group and arch_siblings; a failure
// of one architecture fails the request and leaves no image of the other,
// unless --keep-partial.
//
// The arm64 base is Debian's arm64 minbase, in the same family: its
// package manager and the image's scripts run under qemu-user, so the
// test is skipped where the bake finds no arm64 binfmt_misc handler
// (aminate init --binfmt registers one).
func TestBakeArches(t *testing.T) {
	c := e2etest.Isolated(t)
	x86 := c.Base(t)
	arm := e2etest.MustOK(t, c.Aminate(t, "images", "import", "debian-bookworm-base-arm64", testutil.DebianArm64Base(t), "--role", "base",
		"--arch", "arm64", "--tag", "family="+e2etest.BaseName))
	dir := t.TempDir()
	good := testutil.BuildDeb(t, dir, testutil.Deb{Name: "multi", Version: "1.0-1", Files: map[string]string{"/opt/multi/hello": "hello\n"}})
	manifest := filepath.Join(dir, "manifest.json")
	r := c.Aminate(t, "--arch", "x86_64,arm64", "-b", e2etest.BaseName, "-s", "m1", "--manifest", manifest, good)
	if r.Code != 0 && strings.Contains(r.Stderr, "binfmt") {
		t.Skipf("no arm64 emulation here: %s", r.Stderr)
	}
	lines := strings.Split(e2etest.MustOK(t, r), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "x86_64 ami-") || !strings.HasPrefix(lines[1], "arm64 ami-") {
		t.Fatalf("stdout %q, want an x86_64 and an arm64 image", lines)
	}
	xi, ai := c.ShowImage(t, strings.Fields(lines[0])[1]), c.ShowImage(t, strings.Fields(lines[1])[1])
	if xi.Architecture != "x86_64" || ai.Architecture != "arm64" || xi.Tags["base_ami_id"] != x86 || ai.Tags["base_ami_id"] != arm {
		t.Errorf("x86_64 image %s on %s, arm64 image %s on %s", xi.Architecture, xi.Tags["base_ami_id"], ai.Architecture, ai.Tags["base_ami_id"])
	}
	if xi.Tags["appversion"] != "multi-1.0-1" || ai.Tags["appversion"] != xi.Tags["appversion"] {
		t.Errorf("appversions %q, %q", xi.Tags["appversion"], ai.Tags["appversion"])
	}
	if g := xi.Tags["arch_group"]; g == "" || ai.Tags["arch_group"] != g || xi.Tags["arch_siblings"] != "arm64:"+ai.ID || ai.Tags["arch_siblings"] != "x86_64:"+xi.ID {
		t.Errorf("links: %v / %v", xi.Tags, ai.Tags)
	}
	c.Inspect(t, ai.ID, 0, func(root string) { // dpkg of the arm64 image installed it, under emulation
		if st := e2etest.DpkgStatus(t, root, "multi"); st != "install ok installed" {
			t.Errorf("multi in the arm64 image: %q", st)
		}
		if elf, err := os.ReadFile(filepath.Join(root, "usr/bin/dpkg")); err != nil || len(elf) < 20 || elf[18] != 0xb7 {
			t.Errorf("the arm64 image's dpkg is not an aarch64 program (%v)", err)
		}
	})
	var ims []*plugin.Image
	out := e2etest.MustOK(t, c.Aminate(t, "images", "list", "--tag", "arch_group="+xi.Tags["arch_group"], "--output", "json"))
	if err := json.Unmarshal([]byte(out), &ims); err != nil || len(ims) != 2 {
		t.Errorf("images list --tag arch_group=...: %v %s", err, out)
	}
	var m struct {
		Group  string          `json:"arch_group"`
		Images []*plugin.Image `json:"images"`
	}
	if err := json.Unmarshal([]byte(e2etest.ReadFile(t, manifest)), &m); err != nil || m.Group != xi.Tags["arch_group"] || len(m.Images) != 2 {
		t.Errorf("manifest: %v %+v", err, m)
	}

	// An image script that fails on arm64 only fails the request.
	bad := testutil.BuildDeb(t, dir, testutil.Deb{Name: "halfway", Version: "1.0-1",
		Files: map[string]string{"/var/local/50-arm.sh": "#!/bin/sh\ncase \"$AMINATOR_AMI_NAME\" in *-arm64-*) echo no arm64 here >&2; exit 3;; esac\n"},
		Exec:  []string{"/var/local/50-arm.sh"}})
	r = c.Aminate(t, "--arch", "x86_64,arm64", "-b", e2etest.BaseName, "-s", "m2", bad)
	if r.Code != 1 || !strings.Contains(r.Stderr, "arm64") {
		t.Errorf("a failed arm64 bake: exit %d\n%s", r.Code, r.Stderr)
	}
	if ims := familyImages(t, c, "halfway"); len(ims) != 0 {
		t.Errorf("the failed request left %d images", len(ims))
	}
	r = c.Aminate(t, "--arch", "x86_64,arm64", "-b", e2etest.BaseName, "-s", "m3", "--keep-partial", bad)
	if r.Code != 1 || !strings.HasPrefix(r.Stdout, "x86_64 ami-") {
		t.Errorf("--keep-partial: exit %d, stdout %q", r.Code, r.Stdout)
	}
	if ims := familyImages(t, c, "halfway"); len(ims) != 1 || ims[0].Architecture != "x86_64" || ims[0].Tags["arch_group"] == "" {
		t.Errorf("--keep-partial kept %v", ims)
	}
	// -B names one image: refused before anything is made.
	if r := c.Aminate(t, "--arch", "x86_64,arm64", "-B", x86, good); r.Code != 2 || !strings.Contains(r.Stderr, "give -b FAMILY") {
		t.Errorf("-B with two architectures: exit %d\n%s", r.Code, r.Stderr)
	}
	for _, id := range []string{xi.ID, ai.ID} {
		e2etest.MustOK(t, c.Aminate(t, "images", "rm", id))
	}
	for _, im := range familyImages(t, c, "halfway") {
		e2etest.MustOK(t, c.Aminate(t, "images", "rm", im.ID))
	}
}

// familyImages are the images of a family on c.
func familyImages(t *testing.T, c *e2etest.Cloud, family string) []*plugin.Image {
	t.Helper()
	var ims []*plugin.Image
	if err := json.Unmarshal([]byte(e2etest.MustOK(t, c.Aminate(t, "images", "list", "--family", family, "--output", "json"))), &ims); err != nil {
		t.Fatal(err)
	}
	return ims
}
