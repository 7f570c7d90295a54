package bootdisk

import (
	"errors"
	"strings"
	"testing"
)

// The boot mode for each disk, architecture and request; each refusal
// names what is missing.
func TestMode(t *testing.T) {
	both := Loaders{BIOS: true, UEFI: true, UEFIArchs: []string{"x86_64"}}
	uefi := Loaders{UEFI: true, UEFIArchs: []string{"x86_64"}, BIOSNote: "the MBR boot code (the disk's first 440 bytes) is all zero"}
	bios := Loaders{BIOS: true, UEFINote: "the GPT has no EFI system partition"}
	none := Loaders{BIOSNote: "no partition table", UEFINote: "no partition table"}
	arm := Loaders{UEFI: true, UEFIArchs: []string{"arm64"}, BIOSNote: "zero"}
	for _, tc := range []struct {
		l         Loaders
		arch, req string
		want      string // the mode, or "!" and what the refusal says
		noLoader  bool
	}{
		{both, "x86_64", "", "uefi-preferred", false},
		{uefi, "x86_64", "", "uefi", false},
		{bios, "x86_64", "", "legacy-bios", false},
		{bios, "", "", "legacy-bios", false},
		{none, "x86_64", "", "!the disk has no boot loader: EC2's firmware would find nothing to boot (no BIOS loader: no partition table; no UEFI loader for x86_64: no partition table); build the foundation with --profile cloud", true},
		{both, "x86_64", "legacy-bios", "legacy-bios", false},
		{both, "x86_64", "uefi", "uefi", false},
		{both, "amd64", "uefi-preferred", "uefi-preferred", false},
		{uefi, "x86_64", "legacy-bios", "!boot mode legacy-bios needs a BIOS boot loader, and the disk has none (the MBR boot code (the disk's first 440 bytes) is all zero); it boots as uefi", false},
		{uefi, "x86_64", "uefi-preferred", "!boot mode uefi-preferred needs a BIOS boot loader", false},
		{bios, "x86_64", "uefi", `!boot mode uefi needs a UEFI loader for x86_64 (\EFI\BOOT\BOOTX64.EFI), and the disk has none (the GPT has no EFI system partition); it boots as legacy-bios`, false},
		{bios, "x86_64", "uefi-preferred", "!boot mode uefi-preferred needs a UEFI loader for x86_64", false},
		{none, "x86_64", "uefi", "!the disk has no boot loader", true},
		{arm, "arm64", "", "uefi", false},
		{arm, "aarch64", "uefi", "uefi", false},
		{arm, "arm64", "legacy-bios", "!arm64 instances boot through UEFI only", false},
		{Loaders{BIOS: true, UEFI: true, UEFIArchs: []string{"arm64"}}, "arm64", "uefi-preferred", "!arm64 instances boot through UEFI only", false},
		{both, "arm64", "", "!the disk has no boot loader for arm64: EC2's firmware (UEFI only on Graviton) would find nothing to boot (no UEFI loader: its UEFI loaders are for x86_64 only)", true},
		{arm, "x86_64", "", "!no UEFI loader for x86_64: its UEFI loaders are for arm64 only", true},
		{arm, "x86_64", "uefi", "!the disk has no boot loader", true},
	} {
		got, err := Mode(tc.l, tc.arch, tc.req)
		if msg, refused := strings.CutPrefix(tc.want, "!"); refused {
			if err == nil || !strings.Contains(err.Error(), msg) || !errors.Is(err, ErrCannotBoot) || errors.Is(err, ErrNoLoader) != tc.noLoader {
				t.Errorf("Mode(%s, %s, %q) = %q, %v; want a refusal saying %q (no loader: %v)", tc.l, tc.arch, tc.req, got, err, msg, tc.noLoader)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Mode(%s, %s, %q) = %q, %v; want %q", tc.l, tc.arch, tc.req, got, err, tc.want)
		}
	}
	if _, err := Mode(both, "x86_64", "bios"); err == nil || errors.Is(err, ErrCannotBoot) {
		t.Errorf("an unknown mode: %v", err)
	}
}

func TestTag(t *testing.T) {
	for l, want := range map[*Loaders]string{
		{BIOS: true, UEFI: true}: "bios+uefi", {UEFI: true}: "uefi", {BIOS: true}: "legacy-bios", {}: "none",
	} {
		if l.Tag() != want {
			t.Errorf("%+v: %s, want %s", *l, l.Tag(), want)
		}
	}
}
