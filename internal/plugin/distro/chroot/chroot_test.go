package chroot_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/distro/chroot"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/testutil"
)

// tinyImage makes an ext4 image from a directory tree built by fn, attaches
// it and returns the loop device.
func tinyImage(t *testing.T, fn func(root string)) (dev string, mnt string) {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	testutil.CheckNoLeaks(t, dir)
	root := filepath.Join(dir, "tree")
	for _, d := range []string{"proc", "sys", "dev", "etc", "usr/bin", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	fn(root)
	img := filepath.Join(dir, "img")
	if b, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", root, img, "32M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, b)
	}
	d, err := loop.Attach(context.Background(), img, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Detach() })
	return d.Path, filepath.Join(dir, "mnt")
}

func sum(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func enter(t *testing.T, dev, mnt string) (plugin.Chroot, error) {
	d := testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", debian.Defaults(), plugin.Deps{})
	return d.Enter(context.Background(), plugin.MountOptions{Device: dev, MountPoint: mnt})
}

// An image whose /usr/sbin is an absolute symlink to the host's /usr/sbin
// must not get aminator to write the HOST's policy-rc.d (the original
// tool's defect): the bake fails clearly and unmounts everything.
func TestSymlinkCannotEscapeToHost(t *testing.T) {
	before := sum("/usr/sbin/policy-rc.d")
	dev, mnt := tinyImage(t, func(root string) {
		os.MkdirAll(filepath.Join(root, "usr"), 0o755)
		os.Symlink("/usr/sbin", filepath.Join(root, "usr/sbin"))
	})
	c, err := enter(t, dev, mnt)
	if err == nil {
		c.Close(context.Background())
		t.Fatal("entering an image whose /usr/sbin points at the host succeeded")
	}
	if !strings.Contains(err.Error(), "policy-rc.d") {
		t.Errorf("error does not name the file: %v", err)
	}
	if after := sum("/usr/sbin/policy-rc.d"); after != before {
		t.Fatalf("the HOST's /usr/sbin/policy-rc.d changed (%s -> %s)", before, after)
	}
	if _, err := os.Stat(mnt); err == nil {
		if ents, _ := os.ReadDir(mnt); len(ents) > 0 {
			t.Errorf("still mounted: %v", ents)
		}
	}
}

// A /proc that is a symlink (to the host's /) is never mounted over.
func TestMountTargetSymlinkRefused(t *testing.T) {
	dev, mnt := tinyImage(t, func(root string) {
		os.Remove(filepath.Join(root, "proc"))
		os.Symlink("/", filepath.Join(root, "proc"))
	})
	c, err := enter(t, dev, mnt)
	if err == nil {
		c.Close(context.Background())
		t.Fatal("mounted proc through a symlink")
	}
	if !strings.Contains(err.Error(), "/proc in the image is not a directory") {
		t.Errorf("error: %v", err)
	}
}

// resolv.conf as an absolute symlink (as on Ubuntu): replaced for the bake,
// the symlink itself restored afterwards; policy-rc.d goes in and out of the
// image; the host's files are untouched.
func TestReplaceAndRestore(t *testing.T) {
	hostPolicy, hostResolv := sum("/usr/sbin/policy-rc.d"), sum("/etc/resolv.conf")
	dev, mnt := tinyImage(t, func(root string) {
		os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
		os.WriteFile(filepath.Join(root, "usr/sbin/service"), []byte("#!/bin/sh\n"), 0o755)
		os.Symlink("/run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
	})
	c, err := enter(t, dev, mnt)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Root()
	if b, err := r.ReadFile("usr/sbin/policy-rc.d"); err != nil || !strings.Contains(string(b), "exit 101") {
		t.Errorf("policy-rc.d in the image: %q %v", b, err)
	}
	if l, err := r.Readlink("usr/sbin/service"); err != nil || l != "/bin/true" {
		t.Errorf("service not short-circuited: %q %v", l, err)
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	if b, err := r.ReadFile("etc/resolv.conf"); err != nil || string(b) != string(host) {
		t.Errorf("resolv.conf in the image: %q %v", b, err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Mount again to look.
	c2, err := chroot.Enter(context.Background(), chroot.Options{MountOptions: plugin.MountOptions{Device: dev, MountPoint: mnt}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(context.Background())
	r = c2.Root()
	if l, err := r.Readlink("etc/resolv.conf"); err != nil || l != "/run/systemd/resolve/stub-resolv.conf" {
		t.Errorf("resolv.conf symlink not restored: %q %v", l, err)
	}
	if _, err := r.Lstat("usr/sbin/policy-rc.d"); err == nil {
		t.Error("policy-rc.d left in the image")
	}
	if st, err := r.Lstat("usr/sbin/service"); err != nil || !st.Mode().IsRegular() {
		t.Errorf("service not restored: %v", err)
	}
	if sum("/usr/sbin/policy-rc.d") != hostPolicy || sum("/etc/resolv.conf") != hostResolv {
		t.Error("a host file changed")
	}
}

// binfmt_misc has one instance for the host here: with mount_binfmt_misc
// it is mounted read-only, so nothing can register a handler through it.
// An invalid registration tells the two apart without risk: a writable
// register refuses it with EINVAL, a read-only mount with EROFS.
func TestBinfmtMountReadOnly(t *testing.T) {
	dev, mnt := tinyImage(t, func(string) {})
	s := debian.Defaults()
	s.MountBinfmtMisc = true
	c, err := testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", s, plugin.Deps{}).Enter(context.Background(), plugin.MountOptions{Device: dev, MountPoint: mnt})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	register := filepath.Join(mnt, "proc/sys/fs/binfmt_misc/register")
	if _, err := os.Stat(register); err != nil {
		t.Fatalf("binfmt_misc is not mounted: %v", err)
	}
	err = os.WriteFile(register, []byte(":aminator-invalid:\n"), 0)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing binfmt_misc's register: %v, want EROFS", err)
	}
}

// A scratch volume's ext4 is mounted without cache flushes (nobarrier),
// and only when asked: an ordinary mount keeps its barriers.
func TestNoFlushMountsWithoutBarriers(t *testing.T) {
	dev, mnt := tinyImage(t, func(string) {})
	for _, noFlush := range []bool{false, true} {
		c, err := chroot.Enter(context.Background(), chroot.Options{MountOptions: plugin.MountOptions{Device: dev, MountPoint: mnt, NoFlush: noFlush}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile("/proc/self/mounts")
		var opts string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == mnt {
				opts = f[3]
			}
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if opts == "" || strings.Contains(opts, "nobarrier") != noFlush {
			t.Errorf("NoFlush %v: mounted with %q", noFlush, opts)
		}
	}
}
