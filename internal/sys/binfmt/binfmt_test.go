package binfmt

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// debianAarch64 is the handler Debian's qemu-user-static registers, as
// the kernel shows it.
const debianAarch64 = `enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POCF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
`

// standIn is a directory laid out as binfmt_misc is, with the given
// handlers.
func standIn(t *testing.T, handlers map[string]string) string {
	dir := t.TempDir()
	for name, body := range map[string]string{"register": "", "status": "enabled\n"} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o200)
	}
	for name, body := range handlers {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	return dir
}

func TestFindsDebiansHandler(t *testing.T) {
	dir := standIn(t, map[string]string{"qemu-aarch64": debianAarch64,
		"python3.11": "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n"})
	h, err := Find(dir, "arm64")
	if err != nil || h.Name != "qemu-aarch64" {
		t.Fatalf("Find = %+v, %v", h, err)
	}
	if _, err := Find(dir, "x86_64"); !errors.Is(err, ErrNoHandler) {
		t.Errorf("x86_64 on a dir with aarch64 only: %v", err)
	}
}

func TestRefusesWhatWouldNotWorkInTheSandbox(t *testing.T) {
	for name, tc := range map[string]struct {
		handlers map[string]string
		want     string
	}{
		"no F flag": {map[string]string{"qemu-aarch64": strings.Replace(debianAarch64, "POCF", "OC", 1)}, "with the F flag"},
		"disabled":  {map[string]string{"qemu-aarch64": strings.Replace(debianAarch64, "enabled", "disabled", 1)}, "is disabled"},
		"none":      {nil, "no binfmt_misc handler for arm64 in"},
		// An arm64 handler for executables only: a PIE would not start.
		"exec only": {map[string]string{"qemu-aarch64": strings.Replace(debianAarch64, "feffffff\n", "ffffffff\n", 1)}, "no binfmt_misc handler for arm64 in"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Find(standIn(t, tc.handlers), "arm64")
			if !errors.Is(err, ErrNoHandler) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Find(filepath.Join(t.TempDir(), "missing"), "arm64"); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("binfmt_misc not mounted: %v", err)
	}
}

// The missing handler's message says how to fix it, on any host.
func TestCheckSaysHowToFix(t *testing.T) {
	foreign := map[string]string{"x86_64": "arm64", "arm64": "x86_64"}[Host()]
	if foreign == "" {
		t.Skip("an unknown host architecture")
	}
	err := Check(standIn(t, nil), foreign)
	for _, want := range []string{"cannot run on this " + Host() + " host", "apt-get install qemu-user-static binfmt-support", "aminate init --binfmt"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%s) = %v, want %q in it", foreign, err, want)
		}
	}
	if err := Check(standIn(t, nil), Host()); err != nil {
		t.Errorf("the host's own architecture: %v", err)
	}
}

// Register's line is one the kernel takes, and Find then finds it: run
// in a user namespace of its own, whose binfmt_misc is its own too
// (Linux 6.7 and later), so the host's handlers are never touched. It
// registers on a directory of its own, which Register mounts binfmt_misc
// on: the host's binfmt_misc mount, where there is one, shows through at
// Dir with the host's handlers.
func TestRegisterInAUserNamespace(t *testing.T) {
	if os.Getenv("BINFMT_TEST_CHILD") == "1" {
		dir := t.TempDir()
		if err := Register(dir, "arm64", "/bin/true"); err != nil {
			t.Fatal(err)
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		h, err := Find(dir, "arm64")
		if err != nil || h.Interpreter != "/bin/true" || !h.FixBinary() {
			t.Fatalf("after Register: %+v, %v", h, err)
		}
		if err := Register(dir, "arm64", "/bin/false"); err != nil {
			t.Fatalf("a second Register: %v", err)
		}
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	before, _ := os.ReadDir(Dir)
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", os.Args[0], "-test.run=^TestRegisterInAUserNamespace$", "-test.v")
	cmd.Env = append(os.Environ(), "BINFMT_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "mount binfmt_misc") {
			t.Skipf("this kernel's binfmt_misc is not per user namespace: %s", out)
		}
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestRegisterInAUserNamespace") {
		t.Fatalf("the child did not run the test:\n%s", out)
	}
	after, _ := os.ReadDir(Dir)
	if len(before) != len(after) {
		t.Errorf("the host's binfmt_misc changed: %v -> %v", before, after)
	}
}

func TestEmulatorMustBeStatic(t *testing.T) {
	if p, err := Emulator("arm64"); err == nil {
		if s, err := isStatic(p); err != nil || !s {
			t.Errorf("Emulator = %s, which is not static", p)
		}
	} else if !strings.Contains(err.Error(), "qemu-user-static") {
		t.Errorf("no emulator: %v", err)
	}
	if s, err := isStatic("/bin/sh"); err != nil || s {
		t.Errorf("/bin/sh static = %v, %v", s, err)
	}
}

// View mounts binfmt_misc for the call where it is not mounted (a job's
// own /proc), and leaves no mount: run in a user namespace of its own,
// whose binfmt_misc is its own too, on an empty directory that stands
// for the kernel's place. (Such an instance lives as long as a mount of
// it, which the test keeps elsewhere as the host's mount would be; the
// initial user namespace's entries pin theirs.)
func TestViewMountsForTheCall(t *testing.T) {
	if os.Getenv("BINFMT_TEST_CHILD") == "1" {
		keep := t.TempDir()
		if err := unix.Mount("binfmt_misc", keep, "binfmt_misc", 0, ""); err != nil {
			t.Fatalf("mount binfmt_misc: %v", err)
		}
		defer unix.Unmount(keep, unix.MNT_DETACH)
		dir := t.TempDir()
		err := view(dir, true, func(d string) error {
			if d == dir {
				t.Fatal("view called fn on the unmounted directory")
			}
			return Register(d, "arm64", "/bin/true")
		})
		if err != nil {
			t.Fatal(err)
		}
		err = view(dir, true, func(d string) error { return Check(d, "arm64") })
		if err != nil {
			t.Fatalf("the handler registered through one view is not seen through the next: %v", err)
		}
		err = view(dir, true, func(d string) error { _, err := Find(d, "x86_64"); return err })
		if !errors.Is(err, ErrNoHandler) || strings.Contains(err.Error(), os.TempDir()+"/aminator-binfmt-") || !strings.Contains(err.Error(), dir) {
			t.Errorf("an error through the view: %v, want ErrNoHandler naming %s", err, dir)
		}
		if mounts, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(mounts), "aminator-binfmt-") || strings.Contains(string(mounts), dir) {
			t.Errorf("a view's mount is left:\n%s", mounts)
		}
		if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "aminator-binfmt-*")); len(left) > 0 {
			t.Errorf("a view's directory is left: %v", left)
		}
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", os.Args[0], "-test.run=^TestViewMountsForTheCall$", "-test.v")
	cmd.Env = append(os.Environ(), "BINFMT_TEST_CHILD=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "mount binfmt_misc") {
		t.Skipf("this kernel's binfmt_misc is not per user namespace: %s", out)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(string(out), "view called fn on the unmounted directory") || !strings.Contains(string(out), "--- PASS: TestViewMountsForTheCall") {
		t.Fatalf("the child did not pass:\n%s", out)
	}
}
