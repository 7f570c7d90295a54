package foundation

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/sys/partition"
)

// debianAarch64 is the handler Debian's qemu-user-static registers, as
// the kernel shows it.
const debianAarch64 = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n" +
	"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"

// armBinfmt is a stand-in for binfmt_misc with Debian's aarch64 handler.
func armBinfmt(t *testing.T) string {
	return binfmtStandIn(t, map[string]string{"qemu-aarch64": debianAarch64})
}

func binfmtStandIn(t *testing.T, handlers map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	handlers["register"], handlers["status"] = "", "enabled\n"
	for name, body := range handlers {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An arm64 cloud foundation is Debian's arm64 cloud disk: the cloud
// kernel, GRUB for UEFI only (grub-uefi), an image registered as arm64
// with boot mode uefi, as Graviton boots.
func TestArm64FoundationSteps(t *testing.T) {
	f := newFakes(t)
	res, err := f.buildArch(t, "", "arm64")
	if err != nil {
		t.Fatal(err)
	}
	calls := work(f.rec.Calls())
	if i, j := slices.Index(calls, "Host.InstallGRUB arm64 grub-uefi"), slices.Index(calls, "Host.MakeFS ext4"); i < 0 || j < i {
		t.Errorf("calls %q: GRUB for arm64's UEFI before the root filesystem", calls)
	}
	im := res.Image
	if im.Architecture != "arm64" || im.BootMode != "uefi" || res.Kernel != "6.1.0-9-cloud-arm64" {
		t.Errorf("image %s, boot mode %q, kernel %q", im.Architecture, im.BootMode, res.Kernel)
	}
	for k, v := range map[string]string{"layout": "grub-uefi", "profile": "cloud", "root_partition": "1", "boot": "uefi"} {
		if im.Tags[k] != v {
			t.Errorf("tag %s=%q, want %q", k, im.Tags[k], v)
		}
	}
}

// What an arm64 cloud foundation installs and boots with: Debian's arm64
// cloud kernel and GRUB's arm64 EFI modules, no BIOS GRUB, and the
// firmware's serial console (ttyS0 on Graviton, ttyAMA0 on qemu's virt).
func TestArm64Profile(t *testing.T) {
	o := Options{Arch: "arm64", Kernel: true}
	if err := o.validate(); err != nil || o.Layout != "grub-uefi" {
		t.Fatalf("validate: %v, layout %q", err, o.Layout)
	}
	pkgs := packages(o)
	for _, p := range []string{"linux-image-cloud-arm64", "grub-efi-arm64-bin", "cloud-init", "openssh-server", "amazon-ec2-utils"} {
		if !slices.Contains(pkgs, p) {
			t.Errorf("packages %q lack %s", pkgs, p)
		}
	}
	if slices.Contains(pkgs, "grub-pc-bin") {
		t.Errorf("packages %q: BIOS GRUB on arm64", pkgs)
	}
	cfg := grubConfig("u", "arm64")
	if strings.Contains(cfg, "console=ttyS0") || strings.Contains(cfg, "serial") || !strings.Contains(cfg, "root=UUID=u ro earlycon") {
		t.Errorf("arm64 grub.cfg:\n%s", cfg)
	}
	if got := grubPlatforms("arm64", "grub-uefi"); !slices.Equal(got, []string{"arm64-efi"}) {
		t.Errorf("platforms %q", got)
	}
	if l := efiLoader["arm64"]; l.removable != "BOOTAA64.EFI" {
		t.Errorf("arm64 loader %+v", l)
	}
}

// A layout with a BIOS loader, or x86_64's systemd-boot, is refused for
// arm64 before any work, saying why and what to use.
func TestArm64RefusesBIOS(t *testing.T) {
	for _, layout := range []string{"hybrid", "uefi"} {
		f := newFakes(t)
		_, err := f.buildArch(t, layout, "arm64")
		var ue *bake.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--layout grub-uefi") {
			t.Errorf("layout %s on arm64: %v", layout, err)
		}
		if layout == "hybrid" && !strings.Contains(err.Error(), "UEFI only") {
			t.Errorf("layout hybrid on arm64: %v", err)
		}
		if calls := f.rec.Calls(); len(calls) != 0 {
			t.Errorf("layout %s on arm64: calls %q", layout, calls)
		}
	}
}

// Without a binfmt_misc handler for arm64 the foundation fails before any
// work with binfmt.Check's message, which says how to fix it; x86_64
// needs none.
func TestArm64NeedsBinfmt(t *testing.T) {
	f := newFakes(t)
	o := Options{Arch: "arm64", Kernel: true, Suffix: "s", Mirror: "http://deb.example/debian", ScratchDir: f.scratch,
		BinfmtDir: binfmtStandIn(t, map[string]string{})}
	_, err := build(t.Context(), f.env, o, nil, f.host)
	if !errors.Is(err, binfmt.ErrNoHandler) || !strings.Contains(err.Error(), "aminate init --binfmt") || !strings.Contains(err.Error(), "foundation for arm64") {
		t.Errorf("no handler: %v", err)
	}
	if calls := f.rec.Calls(); len(calls) != 0 {
		t.Errorf("calls %q", calls)
	}
	if err := checkEmulation(Options{Arch: "x86_64", BinfmtDir: o.BinfmtDir}); err != nil {
		t.Errorf("x86_64: %v", err)
	}
}

// The grub-uefi table is the hybrid one without the BIOS boot partition:
// the ESP 15 first, the root 1 last, so that growpart can grow it.
func TestGRUBUEFIPartitionTable(t *testing.T) {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("no sfdisk")
	}
	disk := filepath.Join(t.TempDir(), "d.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 2<<30); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader(partitionTable("grub-uefi"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	parts, err := partition.Read(disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("partitions %+v", parts)
	}
	got := map[int]partition.Partition{}
	for _, p := range parts {
		got[p.Number] = p
	}
	if got[15].Type != espType || got[1].Type != linuxFS || got[1].Start+got[1].Size < (2<<30)-(1<<20) {
		t.Errorf("partitions %+v", parts)
	}
}
