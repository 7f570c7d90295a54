package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fetchtest"
)

// nothingMade fails the test if a refused command made anything: an
// image, a volume, a mount or a stage that does work.
func nothingMade(t *testing.T, what string, r result, images int) {
	t.Helper()
	for _, stage := range []string{"create volume", "adopt volume", "attach volume", "mount", "bootstrap", "provision"} {
		if strings.Contains(r.Stderr, `msg="stage `+stage+`"`) {
			t.Errorf("%s: refused only after the %s stage:\n%s", what, stage, r.Stderr)
		}
	}
	if n := imageCount(t); n != images {
		t.Errorf("%s: images %d -> %d", what, images, n)
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("%s: volumes left: %d rows, %d files", what, rows, files)
	}
	if ms := testutil.LeaksBesideStores(stateDir()); len(ms) > 0 {
		t.Errorf("%s: mounts left: %v", what, ms)
	}
}

// Inputs a bake or a foundation cannot honour are refused before any
// work: exit 2, a message that says why and what to do instead, and
// nothing made.
func TestInputsRefusedBeforeWork(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-refused", Version: "1.0"})
	var many []string
	for i := 0; i < 200; i++ {
		many = append(many, "--tag", fmt.Sprintf("k%03d=v", i))
	}
	conf := filepath.Join(dir, "tags.yml")
	os.WriteFile(conf, []byte("context:\n  tags: {lineage: mine}\n"), 0o644)
	images := imageCount(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-B", b, "-b", baseName, deb}, "-B/--base-ami-id and -b/--base-ami-name are mutually exclusive"},
		{[]string{"-B", b, "--tag", "creator=x", deb}, `tag "creator" is set by aminator; use -c/--creator instead`},
		{[]string{"-B", b, "--tag", "channel=release", deb}, "use aminate images promote"},
		{[]string{"-B", b, "--tag", "base_ami_id=ami-1", "--dry-run", deb}, "use -B/--base-ami-id"},
		{[]string{"--config", conf, "-B", b, deb}, `tag "lineage" is set by aminator`},
		{append(append([]string{"-B", b}, many...), deb), "200 given, and aminator sets 13 of its own on the image"},
		{[]string{"-B", b, "--tag", "big=" + strings.Repeat("x", 10<<10), deb}, "10240 characters; the cloud takes at most 256"},
		{[]string{"-B", b, "-c", strings.Repeat("c", 300), deb}, "(set with -c/--creator)"},
		{[]string{"foundation", "--tag", "release=x"}, "use foundation --release instead"},
		{[]string{"foundation", "--tag", "creator=x"}, "use -c/--creator instead"},
		{append([]string{"foundation"}, many...), "give at most"},
	} {
		start := time.Now()
		r := aminate(t, tc.args...)
		what := strings.Join(tc.args, " ")
		if len(what) > 80 {
			what = what[:80] + "..."
		}
		if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("aminate %s: exit %d, want 2 with %q\n%s", what, r.Code, tc.want, r.Stderr)
		}
		t.Logf("%s: refused in %s", what, time.Since(start).Round(time.Millisecond))
		nothingMade(t, what, r, images)
	}
}

// A taken default name is found before any work: for a package file, a
// URL's file and a version given, before a volume is made (in a dry run
// too); for a repository package, once apt has resolved it in the image
// and before anything is installed.
func TestNameTakenBeforeWork(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-taken", Version: "2.0-1"})
	mustOK(t, aminate(t, "-B", b, "-s", "taken", deb))
	mustOK(t, aminate(t, "-B", b, "-s", "taken", "hello=2.10-3"))
	srv := fetchtest.NewServer(t, http.FileServer(http.Dir(dir)))
	conf := srv.ConfigFile(t)
	images := imageCount(t)
	const debName = `"aminator-taken-2.0-1-x86_64-taken-ebs"`
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run", deb}, debName},
		{[]string{deb}, debName},
		{[]string{"--dry-run", srv.URL + "/" + filepath.Base(deb)}, debName},
		{[]string{srv.URL + "/" + filepath.Base(deb)}, debName},
		{[]string{"--dry-run", "hello=2.10-3"}, `"hello-2.10-3-x86_64-taken-ebs"`},
		{[]string{"hello=2.10-3"}, `"hello-2.10-3-x86_64-taken-ebs"`},
	} {
		args := append([]string{"--config", conf, "-B", b, "-s", "taken"}, tc.args...)
		r := aminate(t, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "an image named "+tc.want) || !strings.Contains(r.Stderr, "pick another name with -n or -s") {
			t.Errorf("aminate %v: exit %d, want 2 naming %s\n%s", args, r.Code, tc.want, r.Stderr)
		}
		nothingMade(t, strings.Join(tc.args, " "), r, images)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir(), "tmp", "download-*")); len(left) > 0 {
		t.Errorf("the URL's download is left in the state's tmp/: %v", left)
	}

	// A repository package: the dry run says when the name is checked,
	// and the bake finds it taken after resolving, before installing.
	out := mustOK(t, aminate(t, "-B", b, "-s", "taken", "--dry-run", "hello"))
	if !strings.Contains(out, "the bake checks it as soon as it knows it (apt: before installing") {
		t.Errorf("dry run of a repository package: %s", out)
	}
	r := aminate(t, "-B", b, "-s", "taken", "hello")
	if r.Code != 2 || !strings.Contains(r.Stderr, `an image named "hello-2.10-3-x86_64-taken-ebs"`) {
		t.Errorf("repository package, name taken: exit %d\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "stage=\"resolve package\"") || strings.Contains(r.Stderr, "stage=provision") {
		t.Errorf("the name was not checked between resolving and installing:\n%s", r.Stderr)
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left: %d rows, %d files", rows, files)
	}
	// Free again, the same repository bake resolves, pins and installs.
	id := mustOK(t, aminate(t, "-B", b, "-s", "resolved", "hello"))
	if n := showImage(t, id).Name; n != "hello-2.10-3-x86_64-resolved-ebs" {
		t.Errorf("name %q", n)
	}
}

// Bad input: exit 2 for usage errors, 1 for a base that does not exist;
// nothing is left either way.
func TestBadInput(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "accepts 1 arg"},
		{[]string{"--no-such-flag", "x"}, 2, "unknown flag"},
		{[]string{"-B", b, "--vm-type", "pv", "hello"}, 2, "allowed: hvm, paravirtual"},
		{[]string{"-B", b, "Bad_Name!"}, 2, "not a valid Debian package name"},
		{[]string{"-B", b, "/no/such/file.deb"}, 2, "no such file"},
		{[]string{"hello"}, 2, "no base image"},
		{[]string{"-B", "ami-0123456789abcdef0", "hello"}, 1, "no image with id ami-0123456789abcdef0"},
		{[]string{"-B", "xyz", "hello"}, 2, "does not look like"},
		{[]string{"-e", "nope", "-B", b, "hello"}, 2, `no environment "nope"`},
		{[]string{"-B", b, "--ena-networking", "--vm-type", "paravirtual", "hello"}, 2, "need vm_type hvm"},
		{[]string{"-B", b, "--tag", "novalue", "hello"}, 2, "KEY=VALUE"},
		{[]string{"images", "show", "ami-0123456789abcdef0"}, 1, "no image"},
	} {
		r := aminate(t, tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("aminate %v: exit %d, want %d with %q\n%s", tc.args, r.Code, tc.code, tc.want, r.Stderr)
		}
	}
	// A config file with an unknown key names the file, the line, the key and what is allowed.
	cfg := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(cfg, []byte("context:\n  creator: me\n  colour: blue\n"), 0o644)
	r := aminate(t, "--config", cfg, "config")
	if r.Code != 2 || !strings.Contains(r.Stderr, cfg+":3") || !strings.Contains(r.Stderr, "context.colour") || !strings.Contains(r.Stderr, "allowed:") {
		t.Errorf("unknown key: exit %d\n%s", r.Code, r.Stderr)
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("volumes left: %d rows, %d files", rows, files)
	}
	if ms := testutil.LeaksBesideStores(stateDir()); len(ms) > 0 {
		t.Errorf("mounts left: %v", ms)
	}
}

// --dry-run resolves and checks without making anything; --manifest writes
// the result for CI to pick up.
func TestDryRunAndManifest(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-dry", Version: "1.0"})
	images := imageCount(t)
	out := mustOK(t, aminate(t, "-B", b, "-n", "dry", "-s", "x", "--dry-run", deb))
	if !strings.Contains(out, "would bake") || !strings.Contains(out, "image dry-x") {
		t.Errorf("dry run: %s", out)
	}
	if n := imageCount(t); n != images {
		t.Errorf("a dry run made an image")
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("a dry run left volumes")
	}
	manifest := filepath.Join(t.TempDir(), "result.json")
	id := mustOK(t, aminate(t, "-B", b, "-s", "manifest", "--manifest", manifest, deb))
	var res struct {
		Image   struct{ ID string } `json:"image"`
		Timings []struct{ Stage string }
	}
	data, err := os.ReadFile(manifest)
	if err != nil || json.Unmarshal(data, &res) != nil || res.Image.ID != id || len(res.Timings) == 0 {
		t.Errorf("manifest %s: %v", data, err)
	}
}
