package chroot_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/distro/chroot"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/testutil"
)

const staticGRUB = "# written by aminator: boots /vmlinuz\nmenuentry 'Debian' {\n\tlinux /vmlinuz root=UUID=x ro\n\tinitrd /initrd.img\n}\n"

// otherDiversion is a package's diversion already in the image.
const otherDiversion = "/usr/bin/perf\n/usr/bin/perf.wrapper\nlinux-perf\n"

// cloudTree is a tree booted by a static grub.cfg, with the kernel links,
// dpkg's diversions and grub-common's grub-mkconfig.
func cloudTree(root string) {
	for _, d := range []string{"boot/grub", "usr/sbin", "var/lib/dpkg"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "boot/grub/grub.cfg"), []byte(staticGRUB), 0o644)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-50-cloud-amd64"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-6.1.0-50-cloud-amd64"), []byte("i"), 0o644)
	os.Symlink("boot/vmlinuz-6.1.0-50-cloud-amd64", filepath.Join(root, "vmlinuz"))
	os.Symlink("boot/initrd.img-6.1.0-50-cloud-amd64", filepath.Join(root, "initrd.img"))
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/diversions"), []byte(otherDiversion), 0o644)
	os.WriteFile(filepath.Join(root, "usr/sbin/grub-mkconfig"), []byte(realMkconfig), 0o755)
}

const realMkconfig = "#!/bin/sh\n# grub-common's\n"

func enterLogged(t *testing.T, dev, mnt string, log *bytes.Buffer) plugin.Chroot {
	t.Helper()
	d := testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", debian.Defaults(), plugin.Deps{Logger: slog.New(slog.NewTextHandler(log, nil))})
	c, err := d.Enter(context.Background(), plugin.MountOptions{Device: dev, MountPoint: mnt})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// lookAfter mounts the image again, plainly, and calls fn with its root.
func lookAfter(t *testing.T, dev, mnt string, fn func(r *os.Root)) {
	t.Helper()
	c, err := chroot.Enter(context.Background(), chroot.Options{MountOptions: plugin.MountOptions{Device: dev, MountPoint: mnt}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	fn(c.Root())
}

// On an image booted by a static grub.cfg the boot-loader commands are
// deferred for the bake by dpkg diversions: a package installed meanwhile
// puts its files at the diverted paths, and they take the scripts' places
// after the bake, with the diversions gone. A grub.cfg a package wrote
// over aminator's is put back, with a warning; the log says which kernel
// the image boots.
func TestBootLoaderDeferredAndGrubCfgKept(t *testing.T) {
	dev, mnt := tinyImage(t, cloudTree)
	var log bytes.Buffer
	c := enterLogged(t, dev, mnt, &log)
	r := c.Root()
	for _, name := range []string{"grub-install", "grub-mkconfig", "update-grub", "update-grub2"} {
		b, err := r.ReadFile("usr/sbin/" + name)
		if st, _ := r.Stat("usr/sbin/" + name); err != nil || st.Mode().Perm() != 0o755 || !strings.Contains(string(b), "aminator: deferred "+name) {
			t.Errorf("%s not deferred: %v\n%s", name, err, b)
		}
	}
	if b, _ := r.ReadFile("usr/sbin/grub-mkconfig.aminator-deferred"); string(b) != realMkconfig {
		t.Errorf("grub-common's grub-mkconfig was not moved aside: %q", b)
	}
	if b, _ := r.ReadFile("var/lib/dpkg/diversions"); !strings.HasPrefix(string(b), otherDiversion) ||
		!strings.Contains(string(b), "/usr/sbin/update-grub\n/usr/sbin/update-grub.aminator-deferred\n:\n") {
		t.Errorf("dpkg's diversions:\n%s", b)
	}
	// What an install does: dpkg puts grub2-common's update-grub at the
	// diverted path; the kernel moves the links; a grub-mkconfig run by
	// its full path writes grub.cfg.
	r.WriteFile("usr/sbin/update-grub.aminator-deferred", []byte("#!/bin/sh\nexec grub-mkconfig -o /boot/grub/grub.cfg\n"), 0o755)
	r.WriteFile("boot/vmlinuz-6.1.0-50-amd64", []byte("k"), 0o644)
	r.WriteFile("boot/initrd.img-6.1.0-50-amd64", []byte("i"), 0o644)
	r.Remove("vmlinuz")
	r.Symlink("boot/vmlinuz-6.1.0-50-amd64", "vmlinuz")
	r.Remove("initrd.img")
	r.Symlink("/boot/initrd.img-6.1.0-50-amd64", "initrd.img")
	r.Remove("boot/grub/grub.cfg")
	r.WriteFile("boot/grub/grub.cfg", []byte("### BEGIN /etc/grub.d/00_header ###\n"), 0o444)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lookAfter(t, dev, mnt, func(r *os.Root) {
		if b, err := r.ReadFile("boot/grub/grub.cfg"); err != nil || string(b) != staticGRUB {
			t.Errorf("grub.cfg after the bake: %q %v", b, err)
		}
		if st, _ := r.Stat("boot/grub/grub.cfg"); st == nil || st.Mode().Perm() != 0o644 {
			t.Errorf("grub.cfg mode %v", st)
		}
		if b, err := r.ReadFile("usr/sbin/update-grub"); err != nil || !strings.Contains(string(b), "exec grub-mkconfig") {
			t.Errorf("the package's update-grub is not in its place: %q %v", b, err)
		}
		if b, err := r.ReadFile("usr/sbin/grub-mkconfig"); err != nil || string(b) != realMkconfig {
			t.Errorf("grub-common's grub-mkconfig is not back: %q %v", b, err)
		}
		ents, _ := os.ReadDir(filepath.Join(mnt, "usr/sbin"))
		if len(ents) != 2 {
			t.Errorf("left in /usr/sbin: %v", ents)
		}
		if b, _ := r.ReadFile("var/lib/dpkg/diversions"); string(b) != otherDiversion {
			t.Errorf("dpkg's diversions after the bake:\n%s", b)
		}
	})
	for _, want := range []string{
		`msg="boot loader commands deferred for the bake" commands="grub-install grub-mkconfig update-grub update-grub2"`,
		`level=WARN msg="the bake changed a file aminator keeps as it made it; putting it back" path=/boot/grub/grub.cfg`,
		`changed_to="### BEGIN /etc/grub.d/00_header ###"`,
		`vmlinuz=/boot/vmlinuz-6.1.0-50-amd64 initrd.img=/boot/initrd.img-6.1.0-50-amd64`,
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, log.String())
		}
	}
}

// A command a package diverts already is left to that package.
func TestBootLoaderLeavesOthersDiversions(t *testing.T) {
	other := "/usr/sbin/update-grub\n/usr/sbin/update-grub.real\nvendor-grub\n"
	dev, mnt := tinyImage(t, func(root string) {
		cloudTree(root)
		os.WriteFile(filepath.Join(root, "var/lib/dpkg/diversions"), []byte(other), 0o644)
		os.WriteFile(filepath.Join(root, "usr/sbin/update-grub"), []byte("vendor\n"), 0o755)
	})
	var log bytes.Buffer
	c := enterLogged(t, dev, mnt, &log)
	if b, _ := c.Root().ReadFile("usr/sbin/update-grub"); string(b) != "vendor\n" {
		t.Errorf("a diverted update-grub was replaced: %q", b)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `msg="not deferred: a package diverts it already" command=update-grub package=vendor-grub`) {
		t.Errorf("log:\n%s", log.String())
	}
	lookAfter(t, dev, mnt, func(r *os.Root) {
		if b, _ := r.ReadFile("var/lib/dpkg/diversions"); string(b) != other {
			t.Errorf("dpkg's diversions after the bake:\n%s", b)
		}
	})
}

// An image without a static grub.cfg gets no deferred commands; a bake
// that leaves the kernel links leading nowhere is warned about.
func TestBootLoaderNotDeferredWithoutStaticGrubCfg(t *testing.T) {
	dev, mnt := tinyImage(t, func(root string) {
		cloudTree(root)
		os.WriteFile(filepath.Join(root, "boot/grub/grub.cfg"), []byte("linux /boot/vmlinuz-6.1.0-50-cloud-amd64\n"), 0o644)
	})
	var log bytes.Buffer
	c := enterLogged(t, dev, mnt, &log)
	if _, err := c.Root().Lstat("usr/sbin/update-grub"); err == nil {
		t.Error("update-grub deferred in an image with a generated grub.cfg")
	}
	c.Close(context.Background())

	dev, mnt = tinyImage(t, cloudTree)
	log.Reset()
	c = enterLogged(t, dev, mnt, &log)
	c.Root().Remove("boot/initrd.img-6.1.0-50-cloud-amd64")
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), `level=WARN msg="the image will not boot: its GRUB config boots /initrd.img, which leads nowhere"`) {
		t.Errorf("no warning:\n%s", log.String())
	}
}
