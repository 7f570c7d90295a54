// Package boottest proves an image boots: it copies the image's root
// snapshot to a scratch disk (the stored image is never modified), adds a
// one-shot systemd unit that prints a marker on the serial console once
// multi-user.target is reached, and boots the copy's own kernel and initrd
// under qemu (KVM when /dev/kvm works, TCG otherwise) with direct kernel
// boot. The console is saved to a log; a missing kernel, a boot that never
// prints the marker, or a timeout is a failure that quotes the last lines.
package boottest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aminator-go/aminator/internal/image/debversion"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/binfmt"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/sys/partition"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// Options tune a boot test.
type Options struct {
	Timeout time.Duration
	// MemoryMiB for the VM.
	MemoryMiB int
	// ConsoleLog is where the serial console is written.
	ConsoleLog string
	// WorkDir holds the scratch disk.
	WorkDir string
	// Accel is auto (prove KVM works, else TCG), kvm or tcg; "" means auto.
	Accel string
	// Watchdog is how long a boot under KVM may print nothing from its
	// kernel before KVM is taken for broken (DefaultWatchdog when zero).
	Watchdog time.Duration
	// CacheDir keeps the KVM probe's verdict.
	CacheDir string
	// ExpectHTTP are guest ports that must answer HTTP (below 500) within
	// Timeout, besides the marker (see http.go).
	ExpectHTTP []int
	// Like is LikeEC2, LikeKernel or "" (LikeEC2 when the disk has a boot
	// loader). BootMode picks the firmware of a disk that boots both ways
	// (legacy-bios or uefi; default uefi, as EC2's uefi-preferred on a
	// Nitro instance). SSHUser is the login (DefaultUser when empty).
	Like, BootMode, SSHUser string
}

// Result is a finished boot test.
type Result struct {
	Passed     bool          `json:"passed"`
	Reason     string        `json:"reason,omitempty"`
	Accel      string        `json:"accel"`
	Kernel     string        `json:"kernel,omitempty"`
	ConsoleLog string        `json:"console_log"`
	Duration   time.Duration `json:"duration_ns"`
	// Tail is the console's last lines.
	Tail string `json:"tail,omitempty"`
	// HTTP is how each port of Options.ExpectHTTP answered.
	HTTP []HTTPCheck `json:"http,omitempty"`
	// Like is how the image was launched; a launch like EC2's also says
	// its boot mode, the stages it reached, the user and the ssh command
	// that logged in, and the host keys sshd showed.
	Like     string   `json:"like"`
	BootMode string   `json:"boot_mode,omitempty"`
	Stages   []Stage  `json:"stages,omitempty"`
	SSHUser  string   `json:"ssh_user,omitempty"`
	SSH      string   `json:"ssh,omitempty"`
	HostKeys []string `json:"host_keys,omitempty"`
}

// Error is a failed boot.
type Error struct{ R *Result }

func (e *Error) Error() string {
	msg := "boot test failed: " + e.R.Reason + " (console: " + e.R.ConsoleLog + ")"
	if e.R.Tail != "" {
		msg += "\n  last console lines:\n    " + strings.ReplaceAll(e.R.Tail, "\n", "\n    ")
	}
	return msg
}

const marker = "AMINATOR-BOOT-TEST-OK"

// Disks writes a snapshot's data into a new file: where Run reads the
// image's root disk from (a snapstore.Store, or a cloud's DiskFiles).
type Disks interface {
	Restore(ctx context.Context, id, dst string) error
}

// Run boots image im. It returns an *Error when the image does not boot.
func Run(ctx context.Context, store Disks, im *plugin.Image, o Options, log *slog.Logger) (*Result, error) {
	start := time.Now()
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 1024
	}
	res := &Result{ConsoleLog: o.ConsoleLog}
	defer func() { res.Duration = time.Since(start) }()
	plat, err := platformOf(im.Architecture)
	if err != nil {
		return res, err
	}
	if err := CheckPorts(o.ExpectHTTP); err != nil {
		return res, err
	}
	// By path: a launch like EC2's starts it through nsenter, whose PATH is ours.
	qemu, err := exec.LookPath(plat.qemu)
	if err != nil {
		return res, fmt.Errorf("boot test needs %s (Debian: apt-get install %s): %w", plat.qemu, plat.pkg, err)
	}
	root := im.Root()
	if root == nil || root.SnapshotID == "" {
		return res, fmt.Errorf("image %s has no root snapshot", im.ID)
	}
	if err := os.MkdirAll(o.WorkDir, 0o700); err != nil {
		return res, err
	}
	work, err := os.MkdirTemp(o.WorkDir, "boottest-"+im.ID+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	disk := filepath.Join(work, "disk.raw")
	if err := store.Restore(ctx, root.SnapshotID, disk); err != nil {
		return res, fmt.Errorf("boot test: copy the image: %w", err)
	}
	part, _ := strconv.Atoi(im.Tags["root_partition"])
	like, mode, err := launchOf(ctx, disk, im, o, plat)
	if err != nil {
		return res, err
	}
	if like == LikeEC2 {
		if o.SSHUser == "" {
			o.SSHUser = DefaultUser
		}
		if err := runEC2(ctx, plat, qemu, disk, work, part, im, mode, o, res, log); err != nil {
			return res, err
		}
		if !res.Passed {
			return res, &Error{res}
		}
		return res, nil
	}
	res.Like = LikeKernel
	nonce := randHexN(6)
	kernel, initrd, version, err := prepare(ctx, disk, part, work, nonce, plat.serial)
	if err != nil {
		var fe failure
		if errors.As(err, &fe) {
			res.Reason = string(fe)
			return res, &Error{res}
		}
		return res, err
	}
	res.Kernel = version
	rootDev := "/dev/vda"
	if part > 0 {
		rootDev += strconv.Itoa(part)
	}
	fw, err := forwards(o.ExpectHTTP)
	if err != nil {
		return res, err
	}
	args, err := qemuArgs(plat, im, disk, kernel, initrd, rootDev, work, o.MemoryMiB, fw)
	if err != nil {
		return res, err
	}
	out, err := bootWithFallback(ctx, vm{plat: plat, qemu: qemu, args: args, nonce: nonce, fw: fw}, func() string { return kernel }, o, res, log)
	if err != nil {
		return res, err
	}
	res.Passed, res.Reason, res.Tail, res.HTTP = out.passed, out.reason, out.tail, out.http
	if !res.Passed {
		return res, &Error{res}
	}
	return res, nil
}

// bootWithFallback picks the accelerator and boots; under auto, a KVM that
// stays silent is recorded as broken and the boot runs again under TCG.
// kernel gives the kernel that probes KVM ("": none, so TCG); it is only
// called when a probe must run.
func bootWithFallback(ctx context.Context, m vm, kernel func() string, o Options, res *Result, log *slog.Logger) (outcome, error) {
	mode, accel, why, err := pickAccel(ctx, m, kernel, o, log)
	if err != nil {
		return outcome{}, err
	}
	if ctx.Err() != nil {
		return outcome{}, context.Cause(ctx)
	}
	if mode == AccelAuto && accel == AccelTCG {
		log.Info("booting under TCG (software emulation, slower): " + why)
	}
	res.Accel = accel
	log.Info("booting", "like", res.Like, "boot_mode", res.BootMode, "kernel", res.Kernel, "accel", accel, "console", o.ConsoleLog)
	out, err := boot(ctx, m.withAccel(accel), accel == AccelKVM, o, log)
	if err == nil && out.accelFailed && mode == AccelAuto {
		log.Warn("KVM failed: " + out.reason + "; booting again under TCG")
		recordBroken(m.qemu, o.CacheDir, out.reason, log)
		res.Accel = AccelTCG
		out, err = boot(ctx, m.withAccel(AccelTCG), false, o, log)
	}
	return out, err
}

// pickAccel is the accelerator to boot m with under o.Accel (mode), and
// why. A guest of another architecture than the host's runs under TCG:
// KVM runs only the host's own, and insisting on it is an error.
func pickAccel(ctx context.Context, m vm, kernel func() string, o Options, log *slog.Logger) (mode, accel, why string, err error) {
	if mode, err = ParseAccel(o.Accel); err != nil {
		return "", "", "", err
	}
	if !m.plat.native() {
		if mode == AccelKVM {
			return "", "", "", fmt.Errorf("boot test: --accel kvm: KVM runs only this host's architecture (%s), not an %s guest; use --accel tcg or auto", binfmt.Host(), m.plat.arch)
		}
		return mode, AccelTCG, fmt.Sprintf("an %s guest on an %s host (KVM runs only the host's architecture)", m.plat.arch, binfmt.Host()), nil
	}
	accel, why = AccelTCG, "the image has no kernel to probe KVM with"
	k := ""
	if mode == AccelAuto && !verdictCached(m.qemu, o.CacheDir) {
		k = kernel()
	}
	if mode != AccelAuto || k != "" || verdictCached(m.qemu, o.CacheDir) {
		accel, why = chooseAccel(ctx, mode, m.plat, m.qemu, k, o.CacheDir, log)
	}
	return mode, accel, why, nil
}

// qemuArgs is the VM without its accelerator: a UEFI image boots through
// the firmware and its own boot loader, others by direct kernel boot.
func qemuArgs(p platform, im *plugin.Image, disk, kernel, initrd, rootDev, work string, memMiB int, fw []forward) ([]string, error) {
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-m", strconv.Itoa(memMiB), "-smp", "2"}
	if p.kernelMachine != "" {
		args = append(args, "-machine", p.kernelMachine)
	}
	args = append(args, netArgs(fw)...)
	args = append(args, "-drive", "file="+disk+",format=raw,if=virtio,cache=unsafe")
	if im.Tags["boot"] == "uefi" {
		uefi, err := p.uefiArgs(work)
		if err != nil {
			return nil, err
		}
		return append(args, uefi...), nil
	}
	return append(args, "-kernel", kernel, "-initrd", initrd,
		"-append", "root="+rootDev+" rw console="+p.serial+" panic=-1 systemd.show_status=1"), nil
}

// vm is one VM to boot: its emulator, arguments, the marker's nonce and
// the HTTP forwards.
type vm struct {
	plat  platform
	qemu  string
	args  []string
	nonce string
	fw    []forward
	// A launch like EC2's (ec2.go) runs qemu in its namespace (command),
	// reads each console line for its stages (onLine), is up when ready is
	// closed (instead of the marker) and says why it failed (diagnose).
	command  func(ctx context.Context, name string, args ...string) *exec.Cmd
	onLine   func(string)
	ready    chan struct{}
	diagnose func(wait time.Duration) string
	// dial reaches the HTTP forwards (nil: this namespace).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (m vm) withAccel(accel string) vm {
	m.args = append([]string(nil), m.args...)
	if accel == AccelKVM {
		m.args = append(m.args, "-accel", "kvm", "-cpu", "host")
	} else {
		m.args = append(m.args, m.plat.tcgArgs()...)
	}
	return m
}

// failure is a reason the image cannot boot (not a tool error).
type failure string

func (f failure) Error() string { return string(f) }

// prepare mounts the scratch disk, copies out the newest kernel and its
// initrd and installs the marker unit.
func prepare(ctx context.Context, disk string, part int, work, nonce, serial string) (kernel, initrd, version string, err error) {
	err = withRoot(ctx, disk, part, work, 0, func(r *os.Root) error {
		if kernel, initrd, version, err = copyKernel(r, work); err != nil {
			return err
		}
		if _, err := r.Stat("lib/systemd/systemd"); err != nil {
			return failure("the image has no systemd (/lib/systemd/systemd), which the boot test needs")
		}
		return installMarker(r, nonce, serial)
	})
	return kernel, initrd, version, err
}

// withRoot mounts the root filesystem of the scratch disk (partition part,
// 0: the whole disk) with flags and calls f with it.
func withRoot(ctx context.Context, disk string, part int, work string, flags uintptr, f func(*os.Root) error) error {
	d, err := loop.Attach(ctx, disk, loop.Options{})
	if err != nil {
		return err
	}
	defer d.Detach()
	dev, release, err := partition.Open(ctx, d.Path, part)
	if err != nil {
		return err
	}
	defer release()
	fstype, err := mount.DetectFS(dev)
	if err != nil {
		return err
	}
	mnt := filepath.Join(work, "mnt")
	os.MkdirAll(mnt, 0o700)
	data := ""
	if fstype == "xfs" {
		data = "nouuid"
	}
	if err := mount.Mount(dev, mnt, fstype, flags, data); err != nil {
		return err
	}
	defer mount.Unmount(context.WithoutCancel(ctx), mnt, nil)
	r, err := os.OpenRoot(mnt)
	if err != nil {
		return err
	}
	defer r.Close()
	return f(r)
}

// copyKernel copies the image's newest kernel and its initrd into work.
func copyKernel(r *os.Root, work string) (kernel, initrd, version string, err error) {
	ks, _ := fs.Glob(r.FS(), "boot/vmlinuz-*")
	var vers []string
	for _, k := range ks {
		vers = append(vers, strings.TrimPrefix(path.Base(k), "vmlinuz-"))
	}
	if len(vers) == 0 {
		return "", "", "", failure("the image has no kernel (/boot/vmlinuz-*); a foundation built with --no-kernel cannot boot")
	}
	sort.Slice(vers, func(i, j int) bool { return debversion.Compare(vers[i], vers[j]) < 0 })
	v := vers[len(vers)-1]
	kernel, initrd = filepath.Join(work, "vmlinuz"), filepath.Join(work, "initrd")
	for src, dst := range map[string]string{"boot/vmlinuz-" + v: kernel, "boot/initrd.img-" + v: initrd} {
		b, err := r.ReadFile(src)
		if err != nil {
			return "", "", "", failure(fmt.Sprintf("the image's /%s cannot be read: %v", src, err))
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return "", "", "", err
		}
	}
	return kernel, initrd, v, nil
}

// installMarker adds the unit that prints the marker on the serial port
// the console is read from once multi-user.target is reached.
func installMarker(r *os.Root, nonce, serial string) error {
	unit := "[Unit]\nDescription=aminator boot test marker\nAfter=multi-user.target\n\n[Service]\nType=oneshot\n" +
		"ExecStart=/bin/sh -c 'echo " + marker + "-" + nonce + " > /dev/" + serial + "'\n\n[Install]\nWantedBy=multi-user.target\n"
	if err := r.WriteFile("etc/systemd/system/aminator-boot-test.service", []byte(unit), 0o644); err != nil {
		return fmt.Errorf("install the marker unit: %w", err)
	}
	if err := r.MkdirAll("etc/systemd/system/multi-user.target.wants", 0o755); err != nil {
		return err
	}
	return r.Symlink("/etc/systemd/system/aminator-boot-test.service", "etc/systemd/system/multi-user.target.wants/aminator-boot-test.service")
}

// outcome is how one boot ended.
type outcome struct {
	passed bool
	reason string
	tail   string
	// accelFailed: under KVM the kernel printed nothing before the watchdog.
	accelFailed bool
	http        []HTTPCheck
}

// console reads the VM's serial console: it saves every line, keeps the last
// ones, and signals the kernel's first line and the marker.
type console struct {
	tail         logging.Tail
	kernel, mark chan struct{}
	onLine       func(string)
}

func (c *console) read(r io.Reader, save io.Writer, want string) {
	var kOnce, mOnce sync.Once
	s := bufio.NewScanner(io.TeeReader(r, save))
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := strings.TrimRight(s.Text(), "\r")
		c.tail.Add(line)
		if kernelLine.MatchString(line) {
			kOnce.Do(func() { close(c.kernel) })
		}
		if c.onLine != nil {
			c.onLine(line)
		}
		// Anywhere in the line: a getty prompt may be printed on the same line.
		if want != "" && strings.Contains(line, want) {
			mOnce.Do(func() { close(c.mark) })
		}
	}
}

// boot runs one VM until the marker and every expected HTTP answer, its
// exit, the timeout or ctx. With watch (under KVM), a kernel that prints
// nothing within o.Watchdog is an accelerator failure.
func boot(ctx context.Context, m vm, watch bool, o Options, log *slog.Logger) (outcome, error) {
	if err := os.MkdirAll(filepath.Dir(o.ConsoleLog), 0o755); err != nil {
		return outcome{}, err
	}
	save, err := os.Create(o.ConsoleLog)
	if err != nil {
		return outcome{}, err
	}
	defer save.Close()
	p, err := startVM(m, save, log)
	if err != nil {
		return outcome{}, err
	}
	webCtx, stopWeb := context.WithCancel(ctx)
	defer stopWeb()
	web := watchHTTP(webCtx, m.fw, m.dial, time.Now())
	defer progress.Wait(ctx, "waiting for the boot", o.Timeout)()
	out, err := p.wait(ctx, m, web, watch, o)
	out.http = web.results()
	for _, c := range out.http {
		if c.Status > 0 {
			log.Info("guest port answered HTTP", "port", c.Port, "status", c.Status, "after", c.After.Round(time.Second))
		}
	}
	return out, err
}

// running is a started VM and its console.
type running struct {
	cmd    *exec.Cmd
	c      *console
	exited chan error
}

// startVM starts qemu with its console read into save.
func startVM(m vm, save io.Writer, log *slog.Logger) (*running, error) {
	cmd := exec.Command(m.qemu, m.args...)
	if m.command != nil {
		cmd = m.command(context.Background(), m.qemu, m.args...)
	}
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	log.Debug("exec", "argv", strings.Join(cmd.Args, " "))
	p := &running{cmd: cmd, exited: make(chan error, 1),
		c: &console{tail: logging.Tail{N: 20}, kernel: make(chan struct{}), mark: make(chan struct{}), onLine: m.onLine}}
	if err := startHeld(cmd, p.exited); err != nil {
		return nil, fmt.Errorf("start %s: %w", m.qemu, err)
	}
	want := marker + "-" + m.nonce
	if m.ready != nil {
		p.c.mark, want = m.ready, ""
	}
	go p.c.read(out, save, want)
	return p, nil
}

// startHeld starts cmd from a thread of its own that lives until cmd has
// exited, when cmd.Wait's error is sent on exited. The kernel sends the
// parent-death signal when the thread that forked the child ends, not the
// process: Go ends threads that a goroutine locked and left (the network
// namespace's throw-away threads), and the VM must not die with one.
func startHeld(cmd *exec.Cmd, exited chan<- error) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the VM
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	return <-started
}

// stop ends the VM: SIGTERM, then SIGKILL after 5 s.
func (p *running) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// wait waits for the marker and web's answers (see boot).
func (p *running) wait(ctx context.Context, m vm, web *httpWatch, watch bool, o Options) (outcome, error) {
	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	var watchdog <-chan time.Time
	if watch {
		if o.Watchdog <= 0 {
			o.Watchdog = DefaultWatchdog
		}
		wd := time.NewTimer(o.Watchdog)
		defer wd.Stop()
		watchdog = wd.C
	}
	kernelUp, mark, answered := p.c.kernel, p.c.mark, web.done
	up := func() bool { return mark == nil && answered == nil }
	for {
		select {
		case <-kernelUp:
			kernelUp, watchdog = nil, nil // the kernel runs: KVM works
		case <-watchdog:
			p.stop()
			return outcome{accelFailed: true, tail: p.c.tail.String(),
				reason: fmt.Sprintf("under KVM the guest's kernel printed nothing within %s", o.Watchdog)}, nil
		case <-mark:
			mark = nil
		case <-answered:
			answered = nil
		case err := <-p.exited:
			out := p.exitedEarly(err, web)
			if m.diagnose != nil && !out.passed {
				out.reason = fmt.Sprintf("the VM stopped (%v): %s", err, m.diagnose(o.Timeout))
			}
			return out, nil
		case <-timer.C:
			p.stop()
			out := p.timedOut(mark == nil, web, o)
			if m.diagnose != nil && mark != nil {
				out.reason = m.diagnose(o.Timeout)
			}
			return out, nil
		case <-ctx.Done():
			p.stop()
			return outcome{tail: p.c.tail.String()}, context.Cause(ctx)
		}
		if up() {
			p.stop()
			return outcome{passed: true, tail: p.c.tail.String()}, nil
		}
	}
}

// exitedEarly is the outcome of a VM that exited by itself (with -no-reboot,
// a guest that powers off or panics).
func (p *running) exitedEarly(err error, web *httpWatch) outcome {
	out := outcome{tail: p.c.tail.String()}
	select {
	case <-p.c.mark:
	default:
		out.reason = fmt.Sprintf("the VM stopped before reaching multi-user.target (%v)", err)
		return out
	}
	if web.answered() {
		out.passed = true
		return out
	}
	out.reason = fmt.Sprintf("the system reached multi-user.target, but the VM stopped (%v) before HTTP answered from %s", err, web.missing())
	return out
}

// timedOut is the outcome of a VM that did not come up within o.Timeout.
func (p *running) timedOut(marked bool, web *httpWatch, o Options) outcome {
	out := outcome{tail: p.c.tail.String()}
	if !marked {
		out.reason = fmt.Sprintf("no marker on the console within %s", o.Timeout)
	} else {
		out.reason = fmt.Sprintf("the system reached multi-user.target, but no HTTP answer below 500 within %s from %s", o.Timeout, web.missing())
	}
	return out
}
