// Package e2e runs the aminate binary as a user would, as root, against
// real loop devices, mounts, chroots, mmdebstrap and apt: a small Debian
// base is built once per run and imported, and every test checks that it
// leaves no mount, loop device, volume or half-made image behind.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	_ "github.com/aminator-go/aminator/internal/sandbox" // serves the sandbox children (see TestMain)
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/sys/partition"
	"github.com/aminator-go/aminator/internal/testutil"
)

var (
	binary   string // the aminate binary under test
	stateDir string // shared local cloud for the package's tests
	workDir  string
	baseName = "debian-bookworm-base"
	baseID   string
)

func TestMain(m *testing.M) {
	// Bakes run in process here (TestEC2/Bake) re-execute this binary as
	// their sandbox's PID 1: package sandbox takes that process over while
	// it initialises, as in aminate.
	if os.Geteuid() != 0 {
		fmt.Println("e2e: skipped, needs root")
		os.Exit(0)
	}
	var err error
	workDir, err = os.MkdirTemp("/var/tmp", "aminator-e2e-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		binary = filepath.Join(workDir, "aminate")
		build := exec.Command("go", "build", "-o", binary, "./cmd/aminate")
		build.Dir = testutil.RepoRoot()
		if b, err := build.CombinedOutput(); err != nil {
			fmt.Printf("build aminate: %v\n%s", err, b)
			return 1
		}
		shared = newCloud(workDir)
		stateDir = shared.state
		return m.Run()
	}()
	// The store filesystems of the run's state directories (set up by
	// their first command, store_fs: auto) stay mounted between commands;
	// the run ends them, as a user's aminate init --unmount would.
	if err := testutil.UnmountStores(workDir); err != nil {
		fmt.Printf("e2e: unmount the store filesystems: %v\n", err)
		code = 1
	}
	if leaks := testutil.Leaks(workDir); len(leaks) > 0 {
		fmt.Printf("e2e: leaked after the run: %v\n", leaks)
		code = 1
	}
	os.RemoveAll(workDir)
	os.Exit(code)
}

// cloud is one local cloud the tests drive: its own state, log, config
// and home directories under dir.
type cloud struct {
	dir, state string
	// foundation is a bootable foundation, built once (bootableFoundation).
	foundation string
}

// shared is the cloud of the tests that run one after another.
var shared *cloud

func newCloud(dir string) *cloud {
	for _, d := range []string{"etc", "home"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	return &cloud{dir: dir, state: filepath.Join(dir, "state")}
}

// isolated gives a test that runs in parallel with others a cloud of its
// own, and checks that the test leaves nothing under it.
func isolated(t *testing.T) *cloud {
	t.Helper()
	t.Parallel()
	dir, err := os.MkdirTemp(workDir, t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoLeaks(t, dir)
	t.Cleanup(func() { // after the leak check: the store may stay mounted between commands
		if err := testutil.UnmountStores(dir); err != nil {
			t.Error(err)
		}
	})
	return newCloud(dir)
}

// env is the environment every aminate run gets: the cloud's isolated
// state, log and config directories.
func (c *cloud) env(extra ...string) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(c.dir, "home"),
		"AMINATOR_CONFIG_DIR=" + filepath.Join(c.dir, "etc"),
		"AMINATOR_STATE_DIR=" + c.state,
		"AMINATOR_LOG_DIR=" + filepath.Join(c.dir, "log"),
	}
	return append(e, extra...)
}

func env(extra ...string) []string { return shared.env(extra...) }

// ownState makes a state directory of the test's own under workDir and
// a runner for it (extra environment variables added); its store
// filesystem, if a command set one up, is unmounted when the test ends.
func ownState(t *testing.T, prefix string, extraEnv ...string) (string, func(args ...string) result) {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testutil.UnmountStores(dir); err != nil {
			t.Error(err)
		}
	})
	own := append([]string{"AMINATOR_STATE_DIR=" + dir}, extraEnv...)
	return dir, func(args ...string) result { return aminateEnv(t, own, args...) }
}

type result struct {
	stdout, stderr string
	code           int
}

func aminate(t *testing.T, args ...string) result {
	t.Helper()
	return shared.aminateEnv(t, nil, args...)
}

func aminateEnv(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return shared.aminateEnv(t, extraEnv, args...)
}

func (c *cloud) aminate(t *testing.T, args ...string) result {
	t.Helper()
	return c.aminateEnv(t, nil, args...)
}

func (c *cloud) aminateEnv(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = c.env(extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run aminate: %v", err)
	}
	return result{out.String(), errb.String(), code}
}

func mustOK(t *testing.T, r result) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("aminate exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// base imports the Debian base once and returns its id.
func base(t *testing.T) string {
	t.Helper()
	if baseID != "" {
		return baseID
	}
	img := testutil.DebianBase(t)
	baseID = mustOK(t, aminate(t, "images", "import", baseName, img, "--role", "base", "--tag", "base_ami_version=bookworm-1"))
	return baseID
}

func showImage(t *testing.T, ref string) *plugin.Image {
	t.Helper()
	return shared.showImage(t, ref)
}

func (c *cloud) showImage(t *testing.T, ref string) *plugin.Image {
	t.Helper()
	out := mustOK(t, c.aminate(t, "images", "show", "--output", "json", ref))
	var im plugin.Image
	if err := json.Unmarshal([]byte(out), &im); err != nil {
		t.Fatalf("images show json: %v\n%s", err, out)
	}
	return &im
}

// inspect restores an image's root snapshot to a file, mounts it read-only
// in this process and calls fn with the mount point.
func inspect(t *testing.T, id string, part int, fn func(root string)) {
	t.Helper()
	shared.inspect(t, id, part, fn)
}

func (cl *cloud) inspect(t *testing.T, id string, part int, fn func(root string)) {
	t.Helper()
	c, err := local.Open(local.Options{StateDir: cl.state})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	im, err := c.Image(ctx, plugin.ImageQuery{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(cl.dir, "inspect-"+id+".img")
	if err := c.Store().Restore(ctx, im.Root().SnapshotID, file); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(file)
	var o loop.Options
	o.ReadOnly = true
	if part > 0 {
		p, err := partition.Find(file, part)
		if err != nil {
			t.Fatal(err)
		}
		o.Offset, o.SizeLimit = uint64(p.Start), uint64(p.Size)
	}
	d, err := loop.Attach(ctx, file, o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Detach()
	mnt := filepath.Join(cl.dir, "inspect-"+id)
	os.MkdirAll(mnt, 0o755)
	defer os.Remove(mnt)
	fstype, err := mount.DetectFS(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	opts := "noload"
	if fstype == "xfs" {
		opts = "norecovery,nouuid"
	}
	if err := mount.Mount(d.Path, mnt, fstype, syscall.MS_RDONLY, opts); err != nil {
		t.Fatal(err)
	}
	defer mount.Unmount(ctx, mnt, nil)
	fn(mnt)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dpkgStatus returns the Status line of a package in an image's dpkg database.
func dpkgStatus(t *testing.T, root, pkg string) string {
	t.Helper()
	for _, para := range strings.Split(readFile(t, filepath.Join(root, "var/lib/dpkg/status")), "\n\n") {
		if strings.HasPrefix(para, "Package: "+pkg+"\n") {
			for _, l := range strings.Split(para, "\n") {
				if s, ok := strings.CutPrefix(l, "Status: "); ok {
					return s
				}
			}
		}
	}
	return ""
}

// volumeCount is how many volumes the local cloud has, and files in volumes/.
func volumeCount(t *testing.T) (rows int, files int) {
	t.Helper()
	var vs []plugin.Volume
	if err := json.Unmarshal([]byte(mustOK(t, aminate(t, "volumes", "list", "--output", "json"))), &vs); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(stateDir, "data", "volumes"))
	return len(vs), len(ents)
}

func imageCount(t *testing.T) int {
	t.Helper()
	var ims []plugin.Image
	if err := json.Unmarshal([]byte(mustOK(t, aminate(t, "images", "list", "--output", "json"))), &ims); err != nil {
		t.Fatal(err)
	}
	return len(ims)
}
