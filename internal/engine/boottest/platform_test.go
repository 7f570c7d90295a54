package boottest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/sys/binfmt"
)

// An arm64 image is launched as Graviton launches it: qemu's virt machine
// with a GICv3, AAVMF's code read only and a copy of its variable store
// (the template is never written), the same NVMe root, SMBIOS and NIC as
// on x86_64, and a Graviton instance type.
func TestEC2ArgsArm64(t *testing.T) {
	p := platforms["arm64"]
	if _, err := os.Stat(aavmfVars); err != nil {
		t.Skip("no AAVMF here (Debian's qemu-efi-aarch64)")
	}
	work := t.TempDir()
	uefi, err := p.uefiArgs(work)
	if err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(work, "AAVMF_VARS.fd")
	if st, err := os.Stat(vars); err != nil || st.Size() == 0 {
		t.Fatalf("variable store copy: %v", err)
	}
	args := strings.Join(ec2Args(p, "/d/disk.raw", "uefi", 1024, 2222, nil, uefi), " ")
	for _, want := range []string{"-machine virt,gic-version=3", "-device nvme,drive=root,serial=vol", "manufacturer=Amazon EC2,product=t4g.micro",
		"if=pflash,format=raw,unit=0,readonly=on,file=" + aavmfCode, "if=pflash,format=raw,unit=1,file=" + vars, "mac=" + guestMAC} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, "-bios") || strings.Contains(args, "q35") {
		t.Errorf("x86_64's machine or firmware: %s", args)
	}
	if got := p.firmwareName("uefi"); got != "the UEFI firmware (AAVMF)" {
		t.Errorf("firmware name %q", got)
	}
}

// arm64 boots through UEFI only: a disk with both loaders boots by UEFI,
// a BIOS-only one has no loader arm64 can use (so it is booted by its
// kernel, as a loader-less disk), and legacy-bios is refused, saying why.
func TestLaunchOfArm64(t *testing.T) {
	p := platforms["arm64"]
	for _, l := range [][2]bool{{true, true}, {false, true}} {
		like, mode, err := chooseLaunch(l[0], l[1], Options{}, p)
		if err != nil || like != LikeEC2 || mode != "uefi" {
			t.Errorf("bios %v uefi %v: %s %s %v", l[0], l[1], like, mode, err)
		}
	}
	if like, _, err := chooseLaunch(true, false, Options{}, p); err != nil || like != LikeKernel {
		t.Errorf("a BIOS-only disk on arm64: %s %v", like, err)
	}
	_, _, err := chooseLaunch(true, true, Options{BootMode: "legacy-bios"}, p)
	if err == nil || !strings.Contains(err.Error(), "UEFI only") {
		t.Errorf("legacy-bios on arm64: %v", err)
	}
}

// A guest of another architecture runs under TCG whatever /dev/kvm says,
// with the platform's CPU; insisting on KVM is an error. The host's own
// architecture still goes through the probe (accel_test.go).
func TestForeignGuestUnderTCG(t *testing.T) {
	foreign := platforms["arm64"]
	if binfmt.Host() == "arm64" {
		foreign = platforms["x86_64"]
	}
	m := vm{plat: foreign, qemu: "/nonexistent/qemu"}
	noKernel := func() string { t.Error("a foreign guest's kernel probed KVM"); return "" }
	ctx, log := context.Background(), slog.New(slog.DiscardHandler)
	for _, mode := range []string{"", "tcg"} {
		_, accel, why, err := pickAccel(ctx, m, noKernel, Options{Accel: mode, CacheDir: t.TempDir()}, log)
		if err != nil || accel != AccelTCG || (mode == "" && !strings.Contains(why, "KVM runs only the host's architecture")) {
			t.Errorf("accel %q: %s (%s) %v", mode, accel, why, err)
		}
	}
	if _, _, _, err := pickAccel(ctx, m, noKernel, Options{Accel: "kvm"}, log); err == nil || !strings.Contains(err.Error(), "KVM runs only this host's architecture") {
		t.Errorf("--accel kvm for a foreign guest: %v", err)
	}
	args := strings.Join(platforms["arm64"].tcgArgs(), " ")
	if args != "-accel tcg -cpu "+tcgCPUArm64 {
		t.Errorf("arm64 under TCG: %s", args)
	}
}
