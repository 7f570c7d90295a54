package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standInQemu writes a qemu-system-x86_64 first on a PATH that runs the
// real qemu, except that under `-accel kvm` it behaves like the broken KVM
// of some hosts of this kind: the guest prints nothing and spins until it
// is killed. With diskOnly, only a VM with a disk hangs, so the KVM probe
// (which has no disk) passes and the real boot hangs; the probe prints the
// kernel's first line at once rather than booting under TCG, which on a
// loaded machine (the suite's parallel boots) can take longer than the
// probe's 10 s and make it fail.
func standInQemu(t *testing.T, diskOnly bool) (pathEnv string) {
	t.Helper()
	dir := t.TempDir()
	hang := `case " $* " in *" -accel kvm "*) exec sleep 600;; esac`
	if diskOnly {
		hang = `case " $* " in *" -accel kvm "*" -drive "*|*" -drive "*" -accel kvm "*) exec sleep 600;;
  *" -accel kvm "*) echo "[    0.000000] Linux version (stand-in probe)"; exec sleep 600;; esac`
	}
	script := "#!/bin/sh\n" + hang + `
# Anything else runs for real, under TCG.
for a in "$@"; do
  shift
  case "$a" in kvm) a=tcg;; host) a=max;; esac
  set -- "$@" "$a"
done
exec /usr/bin/qemu-system-x86_64 "$@"
`
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH")
}

// A KVM that runs no guest at all: the probe sees no kernel line and the
// boot runs under TCG, and says why.
func bootTestSilentKVMProbe(t *testing.T, c *cloud) {
	f := c.bootableFoundation(t)
	r := c.aminateEnv(t, []string{standInQemu(t, false)}, "test", "--test-boot-mode", "legacy-bios", f)
	if r.code != 0 {
		t.Fatalf("boot test with a silent KVM: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "tcg,") || !strings.Contains(r.stderr, "booting under TCG") {
		t.Errorf("want a TCG boot that says why:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
	if _, err := os.Stat("/dev/kvm"); err == nil && !strings.Contains(r.stderr, "KVM does not run a guest here") {
		t.Errorf("with /dev/kvm present the probe should have run and failed:\n%s", r.stderr)
	}
}

// A KVM that passes the probe but hangs the real boot: the watchdog stops
// it, the boot runs again under TCG and passes, and the verdict is kept so
// the next boot test goes straight to TCG.
func bootTestKVMWatchdog(t *testing.T, c *cloud) {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		// The stand-in stands in for qemu, not for the device: without it
		// qemu -accel kvm fails at once and the probe already chooses TCG.
		t.Log("no /dev/kvm: the probe fails at once, so this checks the TCG path only")
	}
	f := c.bootableFoundation(t)
	path := standInQemu(t, true)
	r := c.aminateEnv(t, []string{path, "AMINATOR_KVM_WATCHDOG=4"}, "test", "--accel", "auto", f)
	if r.code != 0 {
		t.Fatalf("boot test with a KVM that hangs the boot: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "tcg,") {
		t.Errorf("want the boot under TCG: %s", r.stdout)
	}
	kvm := false
	if _, err := os.Stat("/dev/kvm"); err == nil {
		kvm = true
		if !strings.Contains(r.stderr, "printed nothing within 4s") || !strings.Contains(r.stderr, "booting again under TCG") {
			t.Errorf("want the watchdog's reason and the fallback:\n%s", r.stderr)
		}
	}
	if kvm {
		// The verdict is kept (the unit tests show a kept verdict is used).
		files, _ := filepath.Glob(filepath.Join(c.state, "cache", "kvm-probe-*.json"))
		kept := false
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), `"works":false`) && strings.Contains(string(b), "printed nothing within 4s") {
				kept = true
			}
		}
		if !kept {
			t.Errorf("no kept verdict that KVM failed among %v", files)
		}
	}
	// --accel kvm insists: the same hang is a failure that names KVM, not a fallback.
	r = c.aminateEnv(t, []string{path, "AMINATOR_KVM_WATCHDOG=3"}, "test", "--accel", "kvm", f)
	if kvm && (r.code != 1 || !strings.Contains(r.stderr, "under KVM the guest's kernel printed nothing")) {
		t.Errorf("--accel kvm with a hanging KVM: exit %d\n%s", r.code, r.stderr)
	}
	if r := c.aminate(t, "test", "--accel", "xen", f); r.code != 2 {
		t.Errorf("--accel xen: exit %d\n%s", r.code, r.stderr)
	}
	if r := c.aminate(t, "test", "--accel", "kvm", "--no-kvm", f); r.code != 2 {
		t.Errorf("--accel kvm --no-kvm: exit %d\n%s", r.code, r.stderr)
	}
}
