package boottest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/ui/progress"
)

// Accelerators. Auto proves KVM runs a guest before trusting it and falls
// back to TCG; KVM insists on it (a broken KVM fails the test); TCG never
// touches /dev/kvm.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// ParseAccel checks an --accel value ("" means auto).
func ParseAccel(s string) (string, error) {
	switch s {
	case "", AccelAuto:
		return AccelAuto, nil
	case AccelKVM, AccelTCG:
		return s, nil
	}
	return "", fmt.Errorf("accelerator %q: use auto, kvm or tcg", s)
}

// Why /dev/kvm is not enough: on some hosts (nested KVM, the kvm_pvm module)
// /dev/kvm opens and answers KVM_GET_API_VERSION, and even a real-mode guest
// runs, yet a Linux guest under `-accel kvm` prints its real-mode banner and
// then nothing at all, forever. So the probe is qemu itself booting the very
// kernel the test is about to boot, with no disk and no initrd: it must print
// the kernel's own first line within probeTimeout (the kernel then panics for
// want of a root and, with -no-reboot, qemu exits). Without /dev/kvm qemu
// fails at once, so one mechanism covers every host. The verdict is cached per
// host kernel, KVM device and qemu binary, so a host pays for it once.
const (
	probeTimeout = 10 * time.Second
	// DefaultWatchdog is how long a boot under KVM may stay silent before the
	// kernel's first line (in a working KVM it takes well under a second).
	DefaultWatchdog = 30 * time.Second
)

// kernelLine matches a line the kernel itself prints once it runs: its
// banner, or any printk line with a timestamp.
var kernelLine = regexp.MustCompile(`Linux version |^\[\s*[0-9]+\.[0-9]+\]`)

// verdict is a cached probe result.
type verdict struct {
	Key    string    `json:"key"`
	Works  bool      `json:"works"`
	Reason string    `json:"reason,omitempty"`
	When   time.Time `json:"when"`
}

// chooseAccel returns the accelerator to boot with under mode, probing KVM
// with kernel when mode is auto and the verdict is not cached in cacheDir.
func chooseAccel(ctx context.Context, mode string, p platform, qemu, kernel, cacheDir string, log *slog.Logger) (accel, why string) {
	switch mode {
	case AccelTCG:
		return AccelTCG, "--accel tcg"
	case AccelKVM:
		return AccelKVM, "--accel kvm"
	}
	key := probeKey(qemu)
	cache := filepath.Join(cacheDir, "kvm-probe-"+key+".json")
	if v, ok := readVerdict(cache); ok {
		if v.Works {
			return AccelKVM, "KVM ran a guest here before"
		}
		return AccelTCG, "KVM failed here before: " + v.Reason + " (remove " + cache + " to probe again)"
	}
	start := time.Now()
	log.Info("proving KVM runs a guest before trusting it (once per host kernel and qemu)")
	done := progress.Wait(ctx, "probing KVM", probeTimeout)
	reason := probeKVM(ctx, p, qemu, kernel, log)
	done()
	if ctx.Err() != nil {
		return AccelTCG, "cancelled"
	}
	writeVerdict(cache, verdict{Key: key, Works: reason == "", Reason: reason, When: time.Now().UTC()}, log)
	if reason != "" {
		return AccelTCG, "KVM does not run a guest here: " + reason
	}
	log.Debug("KVM probe passed", "took", time.Since(start).Round(time.Millisecond))
	return AccelKVM, "KVM ran the probe guest"
}

// recordBroken caches that KVM failed a real boot despite a good probe.
func recordBroken(qemu, cacheDir, reason string, log *slog.Logger) {
	key := probeKey(qemu)
	writeVerdict(filepath.Join(cacheDir, "kvm-probe-"+key+".json"), verdict{Key: key, Reason: reason, When: time.Now().UTC()}, log)
}

// probeKey names this host's kernel, its /dev/kvm and the qemu binary: a
// new kernel, a KVM device that appears or a new qemu is probed again.
func probeKey(qemu string) string {
	var u unix.Utsname
	unix.Uname(&u)
	id := unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	if st, err := os.Stat("/dev/kvm"); err == nil {
		id += fmt.Sprintf(" kvm %v", st.Mode())
	}
	if p, err := exec.LookPath(qemu); err == nil {
		if st, err := os.Stat(p); err == nil {
			id += fmt.Sprintf(" %s %d %d", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

func readVerdict(path string) (verdict, bool) {
	var v verdict
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &v) != nil {
		return verdict{}, false
	}
	return v, true
}

func writeVerdict(path string, v verdict, log *slog.Logger) {
	b, _ := json.Marshal(v)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, path)
		}
		if err == nil {
			return
		}
	}
	log.Debug("cannot cache the KVM verdict", "path", path)
}

// probeKVM boots kernel under KVM with no disk and returns "" when the
// kernel printed its first line in time, or why not.
func probeKVM(ctx context.Context, p platform, qemu, kernel string, log *slog.Logger) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		"-no-reboot", "-m", "256", "-nic", "none", "-accel", "kvm", "-cpu", "host"}
	if p.kernelMachine != "" {
		args = append(args, "-machine", p.kernelMachine)
	}
	cmdline := "console=" + p.serial + " panic=-1"
	if p.arch == "x86_64" {
		cmdline += " earlyprintk=serial,ttyS0"
	}
	cmd := exec.Command(qemu, append(args, "-kernel", kernel, "-append", cmdline)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err.Error()
	}
	cmd.Stderr = cmd.Stdout
	log.Debug("probing KVM", "argv", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return "start " + qemu + ": " + err.Error()
	}
	seen, scanned := make(chan struct{}), make(chan struct{})
	var last []string
	go func() {
		defer close(scanned)
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		closed := false
		for s.Scan() {
			line := strings.TrimRight(s.Text(), "\r")
			if len(last) < 5 {
				last = append(last, line)
			}
			if !closed && kernelLine.MatchString(line) {
				closed = true
				close(seen)
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}()
	select {
	case <-seen:
		return ""
	case err := <-exited:
		exited <- err // for the deferred wait
		<-scanned
		select {
		case <-seen:
			return ""
		default:
		}
		return fmt.Sprintf("qemu -accel kvm exited before the kernel ran (%v): %s", err, strings.Join(last, " | "))
	case <-ctx.Done():
		return fmt.Sprintf("the probe guest printed nothing from its kernel within %s", probeTimeout)
	}
}

// verdictCached says the KVM probe's verdict for qemu is kept in cacheDir.
func verdictCached(qemu, cacheDir string) bool {
	_, ok := readVerdict(filepath.Join(cacheDir, "kvm-probe-"+probeKey(qemu)+".json"))
	return ok
}
