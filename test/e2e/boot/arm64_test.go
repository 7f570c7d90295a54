package boot

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/testutil"
)

// TestArm64Pipeline is the seed's pipeline for Graviton on this x86_64
// host, in parallel with the x86_64 one (TestBootableFoundation): an arm64
// cloud foundation (mmdebstrap's foreign mode, the tree's scripts under
// qemu-user), a base and an app baked on it with their maintainer scripts
// run emulated, and the app launched as Graviton launches it (AAVMF, the
// virt machine, NVMe) under TCG to an ssh login with the key from the
// instance metadata. One foundation and one boot: the refusals cost no
// bootstrap and no VM.
func TestArm64Pipeline(t *testing.T) {
	needArm64Binfmt(t)
	c := isolated(t)
	if r := c.Aminate(t, "foundation", "--arch", "arm64", "--layout", "hybrid", "-n", "bad"); r.Code != 2 || !strings.Contains(r.Stderr, "UEFI only") {
		t.Errorf("a hybrid (BIOS) layout for arm64: exit %d\n%s", r.Code, r.Stderr)
	}
	f := mustOK(t, c.Aminate(t, "foundation", "--arch", "arm64", "-n", "debian-bookworm-arm64", "-s", "f1"))
	arm64Foundation(t, c, f)
	if r := c.Aminate(t, "test", "--test-boot-mode", "legacy-bios", f); r.Code == 0 || !strings.Contains(r.Stderr, "UEFI only") {
		t.Errorf("legacy-bios launch of an arm64 image: exit %d\n%s", r.Code, r.Stderr)
	}

	dir := t.TempDir()
	// Each postinst records the machine it ran on: aarch64, through qemu-user.
	meta := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-base-meta", Version: "1.0", Postinst: "uname -m > /opt/base-ran-on"})
	b := mustOK(t, c.Aminate(t, "-B", f, "-n", "aminator-base-arm64", "-s", "b1", meta))
	app := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-app", Version: "1.0", Arch: "arm64",
		Files:    map[string]string{"/opt/app/hello.txt": "hello from arm64\n"},
		Postinst: "uname -m > /opt/app/ran-on; dpkg --print-architecture >> /opt/app/ran-on; ls /opt/app > /dev/null"})
	a := mustOK(t, c.Aminate(t, "-B", b, "-s", "a1", app))
	c.Inspect(t, a, 1, func(root string) {
		if got := readFile(t, filepath.Join(root, "opt/base-ran-on")); got != "aarch64\n" {
			t.Errorf("the base's postinst ran on %q", got)
		}
		if got := readFile(t, filepath.Join(root, "opt/app/ran-on")); got != "aarch64\narm64\n" {
			t.Errorf("the app's postinst ran on %q", got)
		}
	})
	ai := c.ShowImage(t, a)
	if ai.Architecture != "arm64" || ai.Tags["lineage"] != f+","+b || ai.Tags["boot"] != "uefi" {
		t.Errorf("app: architecture %q, tags %v", ai.Architecture, ai.Tags)
	}
	arm64Launch(t, c, a)
}

// needArm64Binfmt registers qemu-user's arm64 handler when the host has
// none (scripts/setup.sh registers it on a test host). The handler is
// host configuration, like the package that would register it, and is
// left: a test of another package may be baking through it.
func needArm64Binfmt(t *testing.T) {
	t.Helper()
	if binfmt.Check(binfmt.Dir, "arm64") == nil {
		return
	}
	emu, err := binfmt.Emulator("arm64")
	if err != nil {
		t.Skipf("arm64 cannot run here: %v", err)
	}
	if err := binfmt.Register(binfmt.Dir, "arm64", emu); err != nil {
		t.Fatalf("register qemu-user for arm64: %v", err)
	}
	t.Logf("registered %s for arm64 in %s", emu, binfmt.Dir)
}

// arm64Foundation checks an arm64 cloud foundation: tags, the tree's
// architecture, GRUB's arm64 EFI modules and config, Debian's arm64 cloud
// kernel, and, read from the disk itself, a UEFI loader for arm64 only.
func arm64Foundation(t *testing.T, c *cloud, f string) {
	t.Helper()
	fi := c.ShowImage(t, f)
	for k, v := range map[string]string{"role": "foundation", "layout": "grub-uefi", "profile": "cloud", "boot": "uefi", "root_partition": "1"} {
		if fi.Tags[k] != v {
			t.Errorf("foundation tag %s = %q, want %q", k, fi.Tags[k], v)
		}
	}
	// The local cloud keeps no boot mode (the unit tests check the one
	// registered); the boot tag and the disk's loaders below say it.
	if fi.Architecture != "arm64" || !strings.HasSuffix(fi.Tags["kernel"], "-cloud-arm64") {
		t.Errorf("foundation: architecture %q, kernel %q", fi.Architecture, fi.Tags["kernel"])
	}
	c.Inspect(t, f, 1, func(root string) {
		for _, rel := range []string{"usr/bin/cloud-init", "usr/sbin/sshd", "boot/grub/arm64-efi/linux.mod", "etc/cloud/cloud.cfg.d/01_aminator.cfg",
			"etc/systemd/system/multi-user.target.wants/systemd-networkd.service"} {
			if _, err := os.Lstat(filepath.Join(root, rel)); err != nil {
				t.Errorf("the arm64 foundation lacks /%s: %v", rel, err)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "boot/grub/i386-pc")); err == nil {
			t.Error("BIOS GRUB modules on an arm64 disk")
		}
		if cfg := readFile(t, filepath.Join(root, "boot/grub/grub.cfg")); !strings.Contains(cfg, "linux /vmlinuz root=UUID=") || strings.Contains(cfg, "ttyS0") {
			t.Errorf("grub.cfg:\n%s", cfg)
		}
		if e, err := elf.Open(filepath.Join(root, "usr/bin/dpkg")); err != nil || e.Machine != elf.EM_AARCH64 {
			t.Errorf("/usr/bin/dpkg is not an arm64 program: %v", err)
		} else {
			e.Close()
		}
		if st := dpkgStatus(t, root, "linux-image-cloud-arm64"); !strings.Contains(st, "install ok installed") {
			t.Errorf("linux-image-cloud-arm64: %q", st)
		}
	})
	raw := filepath.Join(t.TempDir(), "f.raw")
	mustOK(t, c.Aminate(t, "images", "export", "--format", "raw", f, raw))
	l, err := bootdisk.Detect(context.Background(), raw)
	if err != nil || l.BIOS || !slices.Equal(l.UEFIArchs, []string{"arm64"}) {
		t.Errorf("the arm64 disk's loaders: %+v, %v", l, err)
	}
	os.Remove(raw)
}

// arm64Launch launches an arm64 image like EC2 launches a Graviton
// instance, under TCG, and checks the same result as an x86_64 launch.
func arm64Launch(t *testing.T, c *cloud, id string) {
	t.Helper()
	r := c.Aminate(t, "test", "--output", "json", "--timeout", "10m", id)
	var res boottest.Result
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != 0 {
		t.Fatalf("launch of an arm64 image: exit %d, %v\nstdout:\n%s\nstderr:\n%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if !res.Passed || res.Like != "ec2" || res.BootMode != "uefi" || res.Accel != "tcg" || res.SSHUser != "admin" || !strings.HasPrefix(res.SSH, "ssh -i ") || len(res.HostKeys) == 0 {
		t.Errorf("result %+v", res)
	}
	var names []string
	for _, s := range res.Stages {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "kernel,system,metadata,key,ssh,login" {
		t.Errorf("stages %s", got)
	}
	console := readFile(t, res.ConsoleLog)
	for _, want := range []string{"-cloud-arm64"} {
		if !strings.Contains(console, want) {
			t.Errorf("the console lacks %q", want)
		}
	}
	if im := c.ShowImage(t, id); im.Tags["boot_test"] != "passed" {
		t.Errorf("boot_test tag %q", im.Tags["boot_test"])
	}
	t.Logf("arm64 under TCG: logged in after %s: %v", res.Duration.Round(time.Second), res.Stages)
}
