// Package e2etest is the harness of the end-to-end test packages (test/e2e
// and the packages under it): it builds the aminate binary once per test
// binary, runs it as a user would, as root, against local clouds of the
// tests' own (state, log, config and home directories), and checks that a
// run leaves no mount or loop device behind.
//
// Each package gets its own work directory and shared cloud, so packages
// run beside each other (go test runs packages in parallel) without
// seeing each other's images, volumes or leaks.
package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	_ "github.com/aminator-go/aminator/internal/sandbox" // serves the sandbox children: it takes the process over while it initialises
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/sys/partition"
	"github.com/aminator-go/aminator/internal/testutil"
)

// BaseName is the name the Debian base is imported under, Arm64BaseName
// the arm64 one's.
const (
	BaseName      = "debian-bookworm-base"
	Arm64BaseName = "debian-bookworm-base-arm64"
)

var (
	binary  string // the aminate binary under test
	workDir string // everything of this test binary's run
	shared  *Cloud // the cloud of the package's tests that run one after another
)

// Main is the TestMain of an end-to-end package: it builds aminate into a
// work directory of the run, runs the tests, and then unmounts the store
// filesystems the run's commands set up and fails the run if any mount or
// loop device under the work directory is left.
func Main(m *testing.M) {
	// Bakes run in process (TestEC2/Bake) re-execute the test binary as
	// their sandbox's PID 1: package sandbox, imported above, takes that
	// process over while it initialises, as in aminate.
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
		shared = NewCloud(workDir)
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

// Binary is the aminate binary under test.
func Binary() string { return binary }

// WorkDir is the run's work directory: every cloud of the run is under it.
func WorkDir() string { return workDir }

// Shared is the cloud of the package's tests that run one after another.
func Shared() *Cloud { return shared }

// Cloud is one local cloud the tests drive: its own state, log, config
// and home directories under Dir.
type Cloud struct {
	Dir, State string
	baseID     string // the Debian base, imported once (Base)
	arm64ID    string // the arm64 one (Arm64Base)
}

// NewCloud makes the directories of a cloud under dir.
func NewCloud(dir string) *Cloud {
	for _, d := range []string{"etc", "home"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	return &Cloud{Dir: dir, State: filepath.Join(dir, "state")}
}

// Isolated gives a test that runs in parallel with others a cloud of its
// own, and checks that the test leaves nothing under it.
func Isolated(t *testing.T) *Cloud {
	t.Helper()
	t.Parallel()
	dir, err := os.MkdirTemp(workDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoLeaks(t, dir)
	t.Cleanup(func() { // after the leak check: the store may stay mounted between commands
		if err := testutil.UnmountStores(dir); err != nil {
			t.Error(err)
		}
	})
	return NewCloud(dir)
}

// Env is the environment every aminate run gets: the cloud's isolated
// state, log and config directories, and extra.
func (c *Cloud) Env(extra ...string) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(c.Dir, "home"),
		"AMINATOR_CONFIG_DIR=" + filepath.Join(c.Dir, "etc"),
		"AMINATOR_STATE_DIR=" + c.State,
		"AMINATOR_LOG_DIR=" + filepath.Join(c.Dir, "log"),
	}
	return append(e, extra...)
}

// OwnState makes a state directory of the test's own under the work
// directory and a runner for it (on the shared cloud's other directories,
// extra environment variables added); its store filesystem, if a command
// set one up, is unmounted when the test ends.
func OwnState(t *testing.T, prefix string, extraEnv ...string) (string, func(args ...string) Result) {
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
	return dir, func(args ...string) Result { return shared.AminateEnv(t, own, args...) }
}

// Result is what an aminate run printed and its exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Aminate runs aminate with args on the cloud.
func (c *Cloud) Aminate(t *testing.T, args ...string) Result {
	t.Helper()
	return c.AminateEnv(t, nil, args...)
}

// AminateEnv runs aminate with args on the cloud, extraEnv added to its
// environment; a run is killed after 40 minutes (a foundation's bootstrap
// took over 10 on this 2-core machine at load 15, with other suites
// running, and an arm64 one, its scripts emulated, over 20).
func (c *Cloud) AminateEnv(t *testing.T, extraEnv []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = c.Env(extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run aminate: %v", err)
	}
	return Result{out.String(), errb.String(), code}
}

// MustOK fails the test unless the run succeeded, and returns its
// standard output, trimmed.
func MustOK(t *testing.T, r Result) string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("aminate exited %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// Base imports the Debian base (testutil.DebianBase) into the cloud once
// and returns its id.
func (c *Cloud) Base(t *testing.T) string {
	t.Helper()
	if c.baseID != "" {
		return c.baseID
	}
	img := testutil.DebianBase(t)
	c.baseID = MustOK(t, c.Aminate(t, "images", "import", BaseName, img, "--role", "base", "--tag", "base_ami_version=bookworm-1"))
	return c.baseID
}

// Arm64Base imports the arm64 Debian base (testutil.DebianArm64Base) into
// the cloud once and returns its id.
func (c *Cloud) Arm64Base(t *testing.T) string {
	t.Helper()
	if c.arm64ID != "" {
		return c.arm64ID
	}
	img := testutil.DebianArm64Base(t)
	c.arm64ID = MustOK(t, c.Aminate(t, "images", "import", Arm64BaseName, img, "--arch", "arm64", "--role", "base", "--tag", "base_ami_version=bookworm-1"))
	return c.arm64ID
}

// ShowImage is an image of the cloud as `images show --output json` shows it.
func (c *Cloud) ShowImage(t *testing.T, ref string) *plugin.Image {
	t.Helper()
	out := MustOK(t, c.Aminate(t, "images", "show", "--output", "json", ref))
	var im plugin.Image
	if err := json.Unmarshal([]byte(out), &im); err != nil {
		t.Fatalf("images show json: %v\n%s", err, out)
	}
	return &im
}

// Inspect restores an image's root snapshot to a file, mounts its
// partition part (0: the whole disk) read-only in this process and calls
// fn with the mount point.
func (c *Cloud) Inspect(t *testing.T, id string, part int, fn func(root string)) {
	t.Helper()
	lc, err := local.Open(local.Options{StateDir: c.State})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ctx := context.Background()
	im, err := lc.Image(ctx, plugin.ImageQuery{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.Dir, "inspect-"+id+".img")
	if err := lc.Store().Restore(ctx, im.Root().SnapshotID, file); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(file)
	mountFile(t, file, part, filepath.Join(c.Dir, "inspect-"+id), fn)
}

// mountFile mounts partition part of a disk image file (0: the whole
// file) read-only on mnt, calls fn, and unmounts and detaches again.
func mountFile(t *testing.T, file string, part int, mnt string, fn func(root string)) {
	t.Helper()
	ctx := context.Background()
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

// ReadFile is a file's content; the test fails if it cannot be read.
func ReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// DpkgStatus returns the Status line of a package in an image's dpkg database.
func DpkgStatus(t *testing.T, root, pkg string) string {
	t.Helper()
	for _, para := range strings.Split(ReadFile(t, filepath.Join(root, "var/lib/dpkg/status")), "\n\n") {
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

// HostListener listens on the host's loopback for the test's life and
// counts the connections it accepts: what package code must not reach.
func HostListener(t *testing.T) (net.Listener, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln, accepted
}
