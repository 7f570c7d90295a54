package foundation

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin/distro"
)

// The cloud foundation's grub.cfg is what bakes recognise as a static
// config, on which they defer update-grub and keep grub.cfg.
func TestGRUBConfigIsStatic(t *testing.T) {
	for _, arch := range []string{"x86_64", "arm64"} {
		if cfg := grubConfig("0b7c5e2a-1111-2222-3333-444455556666", arch); !distro.StaticGRUB([]byte(cfg)) {
			t.Errorf("a bake would not recognise the %s foundation's grub.cfg:\n%s", arch, cfg)
		}
	}
}

// A hybrid cloud foundation preseeds debconf for GRUB's packages, with a
// hook that debconf-set-selections accepts; other foundations do not.
func TestGRUBDebconfHook(t *testing.T) {
	o := Options{Profile: ProfileCloud, Kernel: true, Layout: "hybrid", Arch: "x86_64"}
	var hook string
	for _, h := range customizeHooks(o) {
		if strings.Contains(h, "debconf-set-selections") {
			hook = h
		}
	}
	for _, want := range []string{"grub-pc grub-pc/install_devices multiselect", "grub-pc grub-pc/install_devices_empty boolean true",
		"grub-efi-amd64 grub2/update_nvram boolean false", "grub-efi-amd64 grub2/force_efi_extra_removable boolean true"} {
		if !strings.Contains(hook, want) {
			t.Errorf("hook lacks %q: %s", want, hook)
		}
	}
	// arm64 has no BIOS loader: grub-efi-arm64's answers only.
	arm := strings.Join(customizeHooks(Options{Profile: ProfileCloud, Kernel: true, Layout: "grub-uefi", Arch: "arm64"}), "\n")
	if !strings.Contains(arm, "grub-efi-arm64 grub2/force_efi_extra_removable boolean true") || strings.Contains(arm, "grub-pc") {
		t.Errorf("arm64 hooks: %s", arm)
	}
	for _, other := range []Options{{Profile: ProfileCloud, Kernel: true, Layout: "uefi", Arch: "x86_64"}, {Profile: ProfileMinimal, Kernel: true, Arch: "x86_64"}} {
		if h := strings.Join(customizeHooks(other), "\n"); strings.Contains(h, "debconf") {
			t.Errorf("%+v: %s", other, h)
		}
	}
	if _, err := exec.LookPath("debconf-set-selections"); err != nil {
		t.Skip("no debconf-set-selections here")
	}
	// mmdebstrap runs a hook with sh, the tree as $1; chroot here only
	// checks what would be set (-c).
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "chroot"), []byte("#!/bin/sh\nshift\nexec \"$@\" -c\n"), 0o755)
	cmd := exec.Command("/bin/sh", "-c", hook, "sh", "/nonexistent")
	cmd.Env = []string{"PATH=" + dir + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("the hook: %v\n%s", err, out)
	}
}
