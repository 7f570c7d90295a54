// Package testutil helps the tests that run as root against real loop
// devices, mounts and chroots: a cached Debian base image, .deb packages
// built on the fly, a check that a test leaked no mount or loop device,
// a plugin built from the registry and a buffer goroutines may share.
package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts, chroot)")
	}
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir is where expensive test artefacts are kept between tests of one
// run: $AMINATOR_TEST_CACHE, or a directory under /var/tmp.
func CacheDir(t testing.TB) string {
	d := os.Getenv("AMINATOR_TEST_CACHE")
	if d == "" {
		d = "/var/tmp/aminator-test-cache"
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// cachedImage returns CacheDir/name, built once by build (under a lock,
// so parallel test binaries share it); build writes the file it is given.
func cachedImage(t testing.TB, name string, build func(ctx context.Context, out string)) string {
	t.Helper()
	RequireRoot(t)
	out := filepath.Join(CacheDir(t), name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute) // an arm64 tree built under emulation on a loaded machine took 12
	defer cancel()
	l, err := flock.Exclusive(ctx, out+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := os.Stat(out); err == nil {
		return out
	}
	start := time.Now()
	build(ctx, out+".tmp")
	if err := os.Rename(out+".tmp", out); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", name, time.Since(start).Round(time.Second))
	return out
}

// DebianBase returns a raw ext4 image of a Debian bookworm minbase, built
// once per cache directory.
func DebianBase(t testing.TB) string {
	t.Helper()
	return cachedImage(t, "debian-bookworm-minbase.img", func(ctx context.Context, out string) {
		cmd := exec.CommandContext(ctx, filepath.Join(RepoRoot(), "scripts", "make-base.sh"), out, "bookworm", "1G")
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			cmd.Env = append(os.Environ(), "TMPDIR=/dev/shm")
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build the Debian base image: %v\n%s", err, b)
		}
	})
}

// DebianArm64Base is DebianBase for arm64 (mmdebstrap --architectures=arm64,
// the same minbase), built once per cache directory. Its maintainer
// scripts run under qemu-user on an x86_64 host, which needs a binfmt_misc
// handler (aminate init --binfmt, which scripts/setup.sh runs); the test
// fails and says so where there is none.
func DebianArm64Base(t testing.TB) string {
	t.Helper()
	return cachedImage(t, "debian-bookworm-minbase-arm64.img", func(ctx context.Context, out string) {
		cmd := exec.CommandContext(ctx, filepath.Join(RepoRoot(), "scripts", "make-base.sh"), out, "bookworm", "1G", "arm64")
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			cmd.Env = append(os.Environ(), "TMPDIR=/dev/shm")
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build the arm64 Debian base image (an x86_64 host needs qemu-user registered: aminate init --binfmt): %v\n%s", err, b)
		}
	})
}

// Deb describes a test package.
type Deb struct {
	Name, Version, Arch string
	Depends             string
	Files               map[string]string // path in the image -> content
	Exec                []string          // which Files are executable
	Postinst            string            // script body
	Prerm               string
	Preinst             string
}

// BuildDeb builds the package with dpkg-deb (-Zgzip -z1: fast) in dir.
func BuildDeb(t testing.TB, dir string, d Deb) string {
	t.Helper()
	if d.Arch == "" {
		d.Arch = "all"
	}
	root := filepath.Join(dir, d.Name+"-"+d.Version+"-root")
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: aminator tests <tests@example.invalid>\nDescription: aminator test package\n", d.Name, d.Version, d.Arch)
	if d.Depends != "" {
		control += "Depends: " + d.Depends + "\n"
	}
	write := func(p, content string, mode os.FileMode) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("DEBIAN/control", control, 0o644)
	if d.Postinst != "" {
		write("DEBIAN/postinst", "#!/bin/sh\nset -e\n"+d.Postinst+"\n", 0o755)
	}
	if d.Preinst != "" {
		write("DEBIAN/preinst", "#!/bin/sh\n"+d.Preinst+"\n", 0o755)
	}
	if d.Prerm != "" {
		write("DEBIAN/prerm", "#!/bin/sh\n"+d.Prerm+"\n", 0o755)
	}
	execs := map[string]bool{}
	for _, e := range d.Exec {
		execs[e] = true
	}
	for p, c := range d.Files {
		mode := os.FileMode(0o644)
		if execs[p] {
			mode = 0o755
		}
		write(strings.TrimPrefix(p, "/"), c, mode)
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Arch))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", root, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	return out
}

// Leaks lists mounts and loop devices under dir.
func Leaks(dir string) []string { return leaks(dir, false) }

// LeaksBesideStores is Leaks without the mounted store filesystems of
// state directories (see Stores), which stay mounted between commands.
func LeaksBesideStores(dir string) []string { return leaks(dir, true) }

// leaks lists mounts and loop devices under dir; with besideStores, not
// the store filesystems of state directories (STATE/data, from
// STATE/data.xfs or data.btrfs as STATE/data.yml records), which stay
// mounted between commands.
func leaks(dir string, besideStores bool) []string {
	store := func(stateDir string) bool {
		_, err := os.Stat(filepath.Join(stateDir, "data.yml"))
		return besideStores && err == nil
	}
	var out []string
	ms, _ := mount.Under(dir)
	for _, m := range ms {
		if filepath.Base(m) != "data" || !store(filepath.Dir(m)) {
			out = append(out, "mount "+m)
		}
	}
	ls, _ := loop.Attached(dir)
	for _, l := range ls {
		_, backing, _ := strings.Cut(l, " -> ")
		if !isStoreFile(backing) || !store(filepath.Dir(backing)) {
			out = append(out, "loop "+l)
		}
	}
	sort.Strings(out)
	return out
}

func isStoreFile(p string) bool {
	return filepath.Base(p) == "data.xfs" || filepath.Base(p) == "data.btrfs"
}

// Stores lists the state directories under dir whose store filesystem
// (made by aminate init or by the first command, store_fs: auto) is
// mounted on their data/.
func Stores(dir string) []string {
	var out []string
	ms, _ := mount.Under(dir)
	for _, m := range ms {
		if filepath.Base(m) != "data" {
			continue
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "data.yml")); err == nil {
			out = append(out, filepath.Dir(m))
		}
	}
	return out
}

// UnmountStores unmounts the store filesystems of the state directories
// under dir, as aminate init --unmount does: what a test run calls at its
// end, so it leaves no mount. Their loop devices clear themselves once no
// mount namespace has the filesystem: a process in a private namespace
// made while it was mounted (a bake, anyone's) holds it until it exits,
// so this waits up to a minute for them.
func UnmountStores(dir string) error {
	var errs []error
	for _, s := range Stores(dir) {
		if err := mount.Unmount(context.Background(), filepath.Join(s, "data"), nil); err != nil {
			errs = append(errs, err)
		}
	}
	for i := 0; i < 600; i++ {
		ls, _ := loop.Attached(dir)
		pinned := 0
		for _, l := range ls {
			if _, backing, _ := strings.Cut(l, " -> "); isStoreFile(backing) {
				pinned++
			}
		}
		if pinned == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// CheckNoLeaks fails the test at its end if any mount or loop device under
// dir is left (loop autoclear may take a moment, so it waits briefly).
// Mounted store filesystems of state directories are not leaks: they stay
// mounted between commands by design (UnmountStores ends them).
func CheckNoLeaks(t testing.TB, dir string) {
	t.Helper()
	t.Cleanup(func() {
		var left []string
		for i := 0; i < 50; i++ {
			if left = LeaksBesideStores(dir); len(left) == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("leaked under %s:\n  %s", dir, strings.Join(left, "\n  "))
	})
}

// RPM describes a test .rpm.
type RPM struct {
	Name, Version, Release string
	Requires               string
	Files                  map[string]string
}

// BuildRPM builds a noarch .rpm with rpmbuild in dir and returns its path.
func BuildRPM(t testing.TB, dir string, r RPM) string {
	t.Helper()
	top := filepath.Join(dir, "rpmbuild-"+r.Name)
	for _, d := range []string{"SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS", "BUILDROOT"} {
		os.MkdirAll(filepath.Join(top, d), 0o755)
	}
	var install, files strings.Builder
	for p, content := range r.Files {
		src := filepath.Join(top, "SOURCES", strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"))
		os.WriteFile(src, []byte(content), 0o644)
		fmt.Fprintf(&install, "mkdir -p %%{buildroot}%s\ninstall -m 0644 %s %%{buildroot}%s\n", filepath.Dir(p), src, p)
		fmt.Fprintf(&files, "%s\n", p)
	}
	spec := fmt.Sprintf("Name: %s\nVersion: %s\nRelease: %s\nSummary: aminator test package\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n", r.Name, r.Version, r.Release)
	if r.Requires != "" {
		spec += "Requires: " + r.Requires + "\n"
	}
	spec += "\n%description\naminator test package\n\n%install\n" + install.String() + "\n%files\n" + files.String()
	specFile := filepath.Join(top, "SPECS", r.Name+".spec")
	os.WriteFile(specFile, []byte(spec), 0o644)
	cmd := exec.Command("rpmbuild", "--define", "_topdir "+top, "--define", "_build_id_links none", "-bb", specFile)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, b)
	}
	out := filepath.Join(top, "RPMS", "noarch", fmt.Sprintf("%s-%s-%s.noarch.rpm", r.Name, r.Version, r.Release))
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// RPMBase returns a raw ext4 image of a Debian minbase with rpm and dnf
// installed and a local yum repository at /srv/repo holding repo (built
// once per cache directory, like DebianBase). It stands in for a RedHat
// image, which cannot be fetched here: rpm and dnf are the real ones.
func RPMBase(t testing.TB, repo []string) string {
	t.Helper()
	return cachedImage(t, "rpm-base.img", func(ctx context.Context, out string) {
		work, err := os.MkdirTemp(CacheDir(t), "rpm-base-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(work)
		tree := filepath.Join(work, "root")
		run := func(name string, args ...string) {
			if b, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s %v: %v\n%s", name, args, err, b)
			}
		}
		run("mmdebstrap", "--quiet", "--variant=minbase", "--include=rpm,dnf", `--aptopt=Acquire::Retries "3"`, "bookworm", tree)
		repoDir := filepath.Join(tree, "srv", "repo")
		os.MkdirAll(repoDir, 0o755)
		for _, r := range repo {
			run("cp", r, repoDir)
		}
		run("createrepo_c", "--quiet", repoDir)
		os.MkdirAll(filepath.Join(tree, "etc", "yum.repos.d"), 0o755)
		os.WriteFile(filepath.Join(tree, "etc", "yum.repos.d", "aminator-test.repo"),
			[]byte("[aminator-test]\nname=aminator test\nbaseurl=file:///srv/repo\nenabled=1\ngpgcheck=0\n"), 0o644)
		os.WriteFile(filepath.Join(tree, "etc", "resolv.conf"), nil, 0o644)
		run("chroot", tree, "rpm", "--initdb")
		run("mkfs.ext4", "-q", "-F", "-d", tree, out, "1G")
	})
}
