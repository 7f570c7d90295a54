package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/mount"
	"github.com/aminator-go/aminator/internal/testutil"
)

// nothingMade fails the test if a refused command made anything: an
// image, a volume, a mount or a stage that does work.
func nothingMade(t *testing.T, what string, r result, images int) {
	t.Helper()
	for _, stage := range []string{"create volume", "adopt volume", "attach volume", "mount", "bootstrap", "provision"} {
		if strings.Contains(r.stderr, `msg="stage `+stage+`"`) {
			t.Errorf("%s: refused only after the %s stage:\n%s", what, stage, r.stderr)
		}
	}
	if n := imageCount(t); n != images {
		t.Errorf("%s: images %d -> %d", what, images, n)
	}
	if rows, files := volumeCount(t); rows != 0 || files != 0 {
		t.Errorf("%s: volumes left: %d rows, %d files", what, rows, files)
	}
	if ms, _ := mount.Under(stateDir); len(ms) > 0 {
		t.Errorf("%s: mounts left: %v", what, ms)
	}
}

// Inputs a bake or a foundation cannot honour are refused before any
// work: exit 2, a message that says why and what to do instead, and
// nothing made.
func TestInputsRefusedBeforeWork(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir)
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
		{append(append([]string{"-B", b}, many...), deb), "200 given, and aminator sets 12 of its own on the image"},
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
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("aminate %s: exit %d, want 2 with %q\n%s", what, r.code, tc.want, r.stderr)
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
	testutil.CheckNoLeaks(t, workDir)
	b := base(t)
	dir := t.TempDir()
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-taken", Version: "2.0-1"})
	mustOK(t, aminate(t, "-B", b, "-s", "taken", deb))
	mustOK(t, aminate(t, "-B", b, "-s", "taken", "hello=2.10-3"))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
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
		args := append([]string{"-B", b, "-s", "taken"}, tc.args...)
		r := aminate(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "an image named "+tc.want) || !strings.Contains(r.stderr, "pick another name with -n or -s") {
			t.Errorf("aminate %v: exit %d, want 2 naming %s\n%s", args, r.code, tc.want, r.stderr)
		}
		nothingMade(t, strings.Join(tc.args, " "), r, images)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "tmp", "download-*")); len(left) > 0 {
		t.Errorf("the URL's download is left in the state's tmp/: %v", left)
	}

	// A repository package: the dry run says when the name is checked,
	// and the bake finds it taken after resolving, before installing.
	out := mustOK(t, aminate(t, "-B", b, "-s", "taken", "--dry-run", "hello"))
	if !strings.Contains(out, "the bake checks it as soon as it knows it (apt: before installing") {
		t.Errorf("dry run of a repository package: %s", out)
	}
	r := aminate(t, "-B", b, "-s", "taken", "hello")
	if r.code != 2 || !strings.Contains(r.stderr, `an image named "hello-2.10-3-x86_64-taken-ebs"`) {
		t.Errorf("repository package, name taken: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "stage=\"resolve package\"") || strings.Contains(r.stderr, "stage=provision") {
		t.Errorf("the name was not checked between resolving and installing:\n%s", r.stderr)
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

// stateTree lists the files under the state directory that are not the
// store's, the registry's or a lock every command shares.
func stateTree(t *testing.T) []string {
	t.Helper()
	var out []string
	filepath.Walk(stateDir, func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(stateDir, p)
		if err != nil || rel == "." {
			return nil
		}
		if rel == "data" || strings.HasPrefix(rel, "aminator.db") || rel == "lock/loop.lock" || rel == "lock/datafs.lock" {
			if info != nil && info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

// A bake SIGKILLed mid-way, its parent or the bake itself, leaves nothing
// that gc does not remove: no refill list in TMPDIR or the state's tmp/,
// no volume, no mount point, no job lock.
func TestKilledBakeLeavesNothingAfterGC(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir)
	base(t)
	tmp := t.TempDir()
	mustOK(t, aminate(t, "gc"))
	before := stateTree(t)
	for _, victim := range []string{"parent", "bake"} {
		cmd := startSlowBake(t, "gc"+victim, "TMPDIR="+tmp)
		if lists, _ := filepath.Glob(filepath.Join(stateDir, "tmp", "refill-*")); len(lists) != 1 {
			t.Errorf("a running bake has %d refill lists in the state's tmp/", len(lists))
		}
		pid := cmd.Process.Pid
		if victim == "bake" {
			out, err := exec.Command("pgrep", "-P", fmt.Sprint(pid), "-x", "aminate").Output()
			if err != nil {
				t.Fatalf("no bake child: %v", err)
			}
			fmt.Sscan(string(out), &pid)
		}
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
		// The bake of a killed parent cleans up and ends by itself; gc
		// leaves scratch alone while any bake runs.
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mustOK(t, aminate(t, "gc"))
			after := stateTree(t)
			if strings.Join(after, " ") == strings.Join(before, " ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SIGKILL of the %s: after gc the state has %v, before the bake %v", victim, after, before)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
			t.Errorf("SIGKILL of the %s left in TMPDIR: %v", victim, ents)
		}
	}
}
