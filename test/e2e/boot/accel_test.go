package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/boottest"
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

// hasKVM says whether this host has /dev/kvm: without it, qemu -accel kvm
// fails at once and the probe chooses TCG before any stand-in matters.
func hasKVM() bool {
	_, err := os.Stat("/dev/kvm")
	return err == nil
}

// brokenKVM is one way a host's KVM can fail, stood in for during one of
// the launches like EC2 of the pipeline's app (twoInstances): env and args
// are added to that `aminate test`, check checks what it said.
type brokenKVM struct {
	name  string
	env   func(t *testing.T) []string
	args  []string
	check func(t *testing.T, c *cloud, r result, res boottest.Result)
}

// silentKVM is a KVM that runs no guest at all: the probe sees no kernel
// line and the boot runs under TCG, and says why.
var silentKVM = brokenKVM{
	name: "a KVM that runs no guest",
	env:  func(t *testing.T) []string { return []string{standInQemu(t, false)} },
	check: func(t *testing.T, c *cloud, r result, res boottest.Result) {
		if res.Accel != boottest.AccelTCG || !strings.Contains(r.Stderr, "booting under TCG") {
			t.Errorf("with a silent KVM, want a TCG boot that says why: accel %q\nstderr %s", res.Accel, r.Stderr)
		}
		if hasKVM() && !strings.Contains(r.Stderr, "KVM does not run a guest here") {
			t.Errorf("with /dev/kvm present the probe should have run and failed:\n%s", r.Stderr)
		}
	},
}

// hangingKVM is a KVM that passes the probe but hangs the real boot: the
// watchdog stops it, the boot runs again under TCG and passes, and the
// verdict is kept so the next boot test goes straight to TCG.
var hangingKVM = brokenKVM{
	name: "a KVM that hangs the boot",
	env: func(t *testing.T) []string {
		if !hasKVM() {
			// The stand-in stands in for qemu, not for the device: without it
			// qemu -accel kvm fails at once and the probe already chooses TCG.
			t.Log("no /dev/kvm: the probe fails at once, so the hanging KVM checks the TCG path only")
		}
		return []string{standInQemu(t, true), "AMINATOR_KVM_WATCHDOG=4"}
	},
	args: []string{"--accel", "auto"},
	check: func(t *testing.T, c *cloud, r result, res boottest.Result) {
		if res.Accel != boottest.AccelTCG {
			t.Errorf("with a KVM that hangs the boot, want the boot under TCG: accel %q", res.Accel)
		}
		if !hasKVM() {
			return
		}
		if !strings.Contains(r.Stderr, "printed nothing within 4s") || !strings.Contains(r.Stderr, "booting again under TCG") {
			t.Errorf("want the watchdog's reason and the fallback:\n%s", r.Stderr)
		}
		// The verdict is kept (the unit tests show a kept verdict is used).
		files, _ := filepath.Glob(filepath.Join(c.State, "cache", "kvm-probe-*.json"))
		for _, f := range files {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), `"works":false`) && strings.Contains(string(b), "printed nothing within 4s") {
				return
			}
		}
		t.Errorf("no kept verdict that KVM failed among %v", files)
	},
}

// accelRefusals: --accel kvm insists (the same hanging KVM is a failure
// that names KVM, not a fallback), and bad --accel values are usage errors.
// None of these boots to a login.
func accelRefusals(t *testing.T, c *cloud, id string) {
	t.Helper()
	r := c.AminateEnv(t, []string{standInQemu(t, true), "AMINATOR_KVM_WATCHDOG=3"}, "test", "--accel", "kvm", id)
	if hasKVM() && (r.Code != 1 || !strings.Contains(r.Stderr, "under KVM the guest's kernel printed nothing")) {
		t.Errorf("--accel kvm with a hanging KVM: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := c.Aminate(t, "test", "--accel", "xen", id); r.Code != 2 {
		t.Errorf("--accel xen: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := c.Aminate(t, "test", "--accel", "kvm", "--no-kvm", id); r.Code != 2 {
		t.Errorf("--accel kvm --no-kvm: exit %d\n%s", r.Code, r.Stderr)
	}
}
