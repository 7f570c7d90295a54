package boottest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestParseAccel(t *testing.T) {
	for in, want := range map[string]string{"": "auto", "auto": "auto", "kvm": "kvm", "tcg": "tcg"} {
		if got, err := ParseAccel(in); err != nil || got != want {
			t.Errorf("ParseAccel(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseAccel("xen"); err == nil {
		t.Error("ParseAccel(xen) should fail")
	}
}

// The kernel's own lines count as "the kernel runs"; the real-mode setup
// code's banner, which a broken KVM still prints, does not.
func TestKernelLine(t *testing.T) {
	for line, want := range map[string]bool{
		"Probing EDD (edd=off to disable)... ok":                                  false,
		"SeaBIOS (version 1.16.2-debian-1.16.2-1)":                                false,
		"[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@example.org)": true,
		"Linux version 6.1.0-56-amd64":                                            true,
		"[   12.345678] systemd[1]: Reached target multi-user.target.":            true,
		"": false,
	} {
		if got := kernelLine.MatchString(line); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

// Forced modes never probe; a cached verdict is used without a probe.
func TestChooseAccelCache(t *testing.T) {
	ctx, log := context.Background(), slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	if a, _ := chooseAccel(ctx, AccelTCG, platforms["x86_64"], "/nonexistent/qemu", "", dir, log); a != AccelTCG {
		t.Errorf("tcg: %s", a)
	}
	if a, _ := chooseAccel(ctx, AccelKVM, platforms["x86_64"], "/nonexistent/qemu", "", dir, log); a != AccelKVM {
		t.Errorf("kvm: %s", a)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("forced modes wrote %d cache files", len(ents))
	}
	recordBroken("/nonexistent/qemu", dir, "silent", log)
	a, why := chooseAccel(ctx, AccelAuto, platforms["x86_64"], "/nonexistent/qemu", "", dir, log)
	if a != AccelTCG || why == "" {
		t.Errorf("cached broken verdict: %s (%s)", a, why)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "kvm-probe-*.json"))
	if len(files) != 1 {
		t.Errorf("cache files %v", files)
	}
}
