package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/service"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

// Bakes of another architecture's image (issue 20): arm64 on this host,
// or x86_64 where the host is arm64.

// debArchOf is dpkg's name of an image architecture.
var debArchOf = map[string]string{"x86_64": "amd64", "arm64": "arm64"}

// foreignArch is the architecture this host runs only under emulation.
func foreignArch(t *testing.T) string {
	t.Helper()
	fs := binfmt.Foreign()
	if len(fs) != 1 {
		t.Skipf("a host of architecture %q", binfmt.Host())
	}
	return fs[0]
}

// labelledImage imports an empty 1 MiB disk as a base image of
// architecture arch: enough for what is refused before any volume, on
// any host, with no emulator and no mmdebstrap.
func labelledImage(t *testing.T, name, arch string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	id := mustOK(t, aminate(t, "images", "import", name, raw, "--arch", arch, "--role", "base"))
	t.Cleanup(func() { aminate(t, "images", "rm", id) })
	return id
}

// A package of another architecture than the base's, and a base this
// host cannot run for want of a binfmt_misc handler (a stand-in
// directory, so it runs on any host), are refused before any work: a
// message that says why and what to do, and nothing made.
func TestArm64Refusals(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	foreign, native := foreignArch(t), binfmt.Host()
	fBase := labelledImage(t, "refusal-"+foreign, foreign)
	nBase := labelledImage(t, "refusal-"+native, native)
	dir := t.TempDir()
	debOf := func(arch string) string {
		return testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-archpkg", Version: "1.0-1", Arch: arch})
	}
	standIn := t.TempDir()
	for _, f := range []string{"register", "status"} {
		os.WriteFile(filepath.Join(standIn, f), nil, 0o600)
	}
	conf := filepath.Join(dir, "binfmt.yml")
	os.WriteFile(conf, []byte("binfmt:\n  dir: "+standIn+"\n"), 0o644)
	images := imageCount(t)
	for _, tc := range []struct {
		what string
		args []string
		code int
		want []string
	}{
		{"a " + debArchOf[native] + " package on a " + foreign + " base", []string{"--config", conf, "-B", fBase, debOf(debArchOf[native])}, 2,
			[]string{"is built for " + debArchOf[native], "and base image " + fBase, "is " + foreign}},
		{"a " + debArchOf[foreign] + " package on a " + native + " base", []string{"-B", nBase, debOf(debArchOf[foreign])}, 2,
			[]string{"is built for " + debArchOf[foreign], "and base image " + nBase, "is " + native}},
		{"no binfmt_misc handler for " + foreign, []string{"--config", conf, "-B", fBase, debOf("all")}, 1,
			[]string{foreign + " binaries cannot run on this " + native + " host", "no binfmt_misc handler for " + foreign + " in " + standIn,
				"apt-get install qemu-user-static binfmt-support", "aminate init --binfmt", "binfmt: {register: true}"}},
	} {
		r := aminate(t, tc.args...)
		if r.Code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s", tc.what, r.Code, tc.code, r.Stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: %q is not in what aminate said:\n%s", tc.what, w, r.Stderr)
			}
		}
		nothingMade(t, tc.what, r, images)
	}
}

// needEmulation fails the test where this host cannot run the foreign
// architecture's programs: scripts/setup.sh registers qemu-user.
func needEmulation(t *testing.T, arch string) {
	t.Helper()
	if err := binfmt.View(binfmt.Dir, func(d string) error { return binfmt.Check(d, arch) }); err != nil {
		t.Fatalf("this test bakes an %s image: %v", arch, err)
	}
}

// An arm64 bake on this host: the package's postinst (and dpkg itself)
// run under qemu-user in the bake's sandbox, and the package is in the
// image's dpkg database.
func TestArm64Bake(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	needEmulation(t, "arm64")
	b := e2etest.Shared().Arm64Base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-armapp", Version: "1.0-1", Arch: "arm64",
		Files: map[string]string{"/opt/armapp/data": "some data\n"},
		Postinst: `dpkg --print-architecture > /opt/armapp/arch
uname -m > /opt/armapp/uname
sha256sum /opt/armapp/data > /opt/armapp/sum
useradd --system --no-create-home armapp
ldconfig`,
	})
	r := aminate(t, "-B", b, "-s", "arm", deb)
	id := mustOK(t, r)
	if !strings.Contains(r.Stderr, "run under emulation") {
		t.Errorf("the bake does not say the base's programs run under emulation:\n%s", r.Stderr)
	}
	if im := showImage(t, id); im.Architecture != "arm64" || !strings.Contains(im.Name, "-arm64-") {
		t.Errorf("image %s: architecture %q, name %q", id, im.Architecture, im.Name)
	}
	inspect(t, id, 0, func(root string) {
		if s := dpkgStatus(t, root, "aminator-armapp"); s != "install ok installed" {
			t.Errorf("dpkg status of the package: %q", s)
		}
		for f, want := range map[string]string{"arch": "arm64", "uname": "aarch64", "sum": "/opt/armapp/data"} {
			if got := readFile(t, filepath.Join(root, "opt/armapp", f)); !strings.Contains(got, want) {
				t.Errorf("the postinst's %s: %q, want %q", f, got, want)
			}
		}
		if !strings.Contains(readFile(t, filepath.Join(root, "etc/passwd")), "\narmapp:") {
			t.Error("the postinst's useradd left no armapp in /etc/passwd")
		}
	})
}

// The sandbox holds under emulation: an arm64 package's postinst, run by
// qemu-user (an x86_64 program making the host's system calls, under the
// sandbox's seccomp filter and dropped capabilities), tries every escape
// of TestSandboxEscapes and TestSandboxBinfmtMisc, and the host is
// untouched.
func TestArm64SandboxEscapes(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	needEmulation(t, "arm64")
	b := e2etest.Shared().Arm64Base(t)
	token := fmt.Sprintf("arm%d", os.Getpid())
	hostPolicy := hashFile(t, "/usr/sbin/policy-rc.d")
	hostName, _ := os.Hostname()
	ratelimit := readFile(t, "/proc/sys/kernel/printk_ratelimit")
	defer os.WriteFile("/proc/sys/kernel/printk_ratelimit", []byte(ratelimit), 0o644)
	handlers := hostBinfmt(t)
	t.Cleanup(func() { removeHostBinfmt(t, "aminator-pwn-"+token) })
	sleeper := exec.Command("sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	ln, accepted := hostListener(t)
	hostFiles := []string{"/tmp/aminator-escape-" + token, "/tmp/aminator-escape-chroot-" + token}
	for _, f := range hostFiles {
		defer os.Remove(f)
	}
	// ptrace is system call 117 on arm64 (101 on x86_64).
	attack := strings.Replace(fmt.Sprintf(escapeScript, token, sleeper.Process.Pid, ln.Addr().(*net.TCPAddr).Port), "syscall(101,", "syscall(117,", 1)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-armescape", Version: "1.0-1", Arch: "arm64",
		Files: map[string]string{
			"/opt/escape/attack.sh": attack,
			"/opt/binfmt/attack.sh": fmt.Sprintf(binfmtScript, token),
			"/opt/binfmt/handler":   "#!/bin/sh\ntouch /tmp/aminator-binfmt-ran\n",
		},
		Exec:     []string{"/opt/escape/attack.sh", "/opt/binfmt/attack.sh", "/opt/binfmt/handler"},
		Postinst: "/opt/escape/attack.sh\n/opt/binfmt/attack.sh\nuname -m > /opt/escape/result/uname",
	})
	id := mustOK(t, aminateEnv(t, []string{"AMINATOR_ESCAPE_SECRET=s3cr3t-" + token}, "-B", b, "-s", "armesc", deb))
	res := map[string]string{}
	inspect(t, id, 0, func(root string) {
		for _, d := range []string{"opt/escape/result", "opt/binfmt/result"} {
			ents, _ := os.ReadDir(filepath.Join(root, d))
			for _, e := range ents {
				res[e.Name()] = readFile(t, filepath.Join(root, d, e.Name()))
			}
		}
	})
	if strings.TrimSpace(res["uname"]) != "aarch64" {
		t.Fatalf("the attacks did not run emulated: uname -m %q (results: %d)", res["uname"], len(res))
	}
	for _, k := range []string{"chroot", "mknod", "mount", "unshare", "kill", "kcore", "sysctl", "loopback", "metadata", "register"} {
		t.Logf("%s: %s", k, strings.ReplaceAll(strings.TrimSpace(res[k]), "\n", " | "))
	}
	checkEscapes(t, res, escapeHost{files: hostFiles, token: token, hostName: hostName, ratelimit: ratelimit,
		sleeper: sleeper, accepted: accepted, policy: hostPolicy})
	t.Run("BinfmtMisc", func(t *testing.T) {
		if strings.Contains(res["mount"], "MOUNTED") || strings.Contains(res["register"], "REGISTERED") || res["register"] == "" {
			t.Errorf("binfmt_misc: mount %q, register %q", res["mount"], res["register"])
		}
		if after := hostBinfmt(t); !slices.Equal(handlers, after) {
			t.Errorf("the host's binfmt_misc handlers changed: %v -> %v", handlers, after)
		}
	})
}

// aminate init --binfmt mounts binfmt_misc and registers qemu-user for
// each architecture this host does not run natively, says so, and run
// again changes nothing. It runs in a user namespace of its own, whose
// binfmt_misc is its own too (Linux 6.7 and later), on a directory
// binfmt.dir names, so the host's handlers are never touched.
func TestInitBinfmt(t *testing.T) {
	foreign := foreignArch(t)
	if _, err := binfmt.Emulator(foreign); err != nil {
		t.Fatalf("%v (scripts/setup.sh installs it)", err)
	}
	dir := t.TempDir()
	bm := filepath.Join(dir, "binfmt_misc")
	os.Mkdir(bm, 0o755)
	conf := filepath.Join(dir, "binfmt.yml")
	os.WriteFile(conf, []byte("binfmt:\n  dir: "+bm+"\n"), 0o644)
	before := hostBinfmt(t)
	a := binary() + " --config " + conf + " init --binfmt"
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
		a+" && echo --- && "+a+" && echo --- && "+a+" --output json && echo --- && umount "+bm)
	cmd.Env = env()
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "mount binfmt_misc") {
		t.Skipf("this kernel's binfmt_misc is not per user namespace: %s", out)
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	runs := strings.Split(string(out), "---\n")
	t.Logf("%s", out)
	if len(runs) != 4 {
		t.Fatalf("want three runs:\n%s", out)
	}
	q := map[string]string{"arm64": "aarch64", "x86_64": "x86_64"}[foreign]
	for i, want := range [][]string{
		{"mounted binfmt_misc at " + bm, foreign + ": registered now: ", "qemu-" + q, "(flags OCF)"},
		{foreign + ": registered already: ", "qemu-" + q},
	} {
		for _, w := range want {
			if !strings.Contains(runs[i], w) {
				t.Errorf("run %d: %q is not in:\n%s", i+1, w, runs[i])
			}
		}
	}
	if strings.Contains(runs[1], "mounted") {
		t.Errorf("the second run mounted binfmt_misc again:\n%s", runs[1])
	}
	var e service.Emulators
	if err := json.Unmarshal([]byte(runs[2]), &e); err != nil || e.Mounted || len(e.Archs) != 1 || e.Archs[0].Registered || e.Archs[0].Handler != "aminator-qemu-"+q {
		t.Errorf("the third run's JSON: %+v, %v\n%s", e, err, runs[2])
	}
	if after := hostBinfmt(t); !slices.Equal(before, after) {
		t.Errorf("the host's binfmt_misc handlers changed: %v -> %v", before, after)
	}
}
