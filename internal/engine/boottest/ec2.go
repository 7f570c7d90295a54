package boottest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aminator-go/aminator/internal/engine/boottest/imds"
	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/netns"
)

// A launch like EC2's boots the disk as EC2 does, changing nothing on it:
// the firmware of the boot mode (SeaBIOS for legacy-bios, OVMF for uefi;
// an arm64 image boots as on Graviton, UEFI only: AAVMF on qemu's virt
// machine, platform.go) boots the disk's own loader from an NVMe device whose serial is an EBS
// volume id; SMBIOS says Amazon EC2 with an ec2-prefixed system UUID (as
// cloud-init's EC2 detection wants); one NIC gets DHCP from qemu's user
// network; and AWS's metadata mock (package imds) answers at
// 169.254.169.254 with the test's own SSH key. qemu and the metadata
// service share a private network namespace (package netns) that has
// nothing but its loopback, which carries 169.254.169.254: the guest
// reaches the metadata through its default gateway as on EC2, and nothing
// else, neither the host nor the outside. The test passes when the real
// ssh client, in that namespace, logs in as the image's default user with
// the key and runs a command.
//
// Not emulated: ENA (the NIC is virtio-net; Debian's cloud kernel has both
// drivers), the Nitro card and its EBS attach timing, instance store, and
// the NVMe vendor data that names the block device mapping.

// Launch modes (Options.Like).
const (
	LikeEC2    = "ec2"
	LikeKernel = "kernel"
)

// DefaultUser is the login of images made by the cloud profile.
const DefaultUser = "admin"

// ec2Launch is one launch's parts.
type ec2Launch struct {
	ns    *netns.NS
	meta  *imds.Server
	web   *http.Server
	st    *stages
	login sshLogin
}

// newEC2Launch makes the namespace, the key pair, the metadata service and
// its recording front on 169.254.169.254:80.
func newEC2Launch(ctx context.Context, p platform, im *plugin.Image, work string, o Options) (_ *ec2Launch, err error) {
	l := &ec2Launch{st: newStages()}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if l.ns, err = netns.New(); err != nil {
		return nil, fmt.Errorf("boot test: network namespace: %w", err)
	}
	key, pub, err := keyPair(ctx, work)
	if err != nil {
		return nil, fmt.Errorf("boot test: %w", err)
	}
	// An abstract socket: no file to leave behind, no path length to exceed.
	sock := "@aminator-imds-" + randHexN(8)
	ul, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("boot test: the metadata service's socket: %w", err)
	}
	defer ul.Close() // the service serves its own copy
	cfg := imds.Config{InstanceID: "i-0" + randHexN(8)[:16], InstanceType: p.instanceType, ImageID: im.ID,
		AvailabilityZone: "us-east-1a", LocalIPv4: "10.0.2.15", MAC: guestMAC, Architecture: im.Architecture,
		KeyName: "aminator-boot-test", PublicKey: pub}
	if l.meta, err = imds.Start(cfg, ul); err != nil {
		return nil, fmt.Errorf("boot test: %w", err)
	}
	if err := l.serveFront(sock); err != nil {
		return nil, err
	}
	fw, err := forwardsOn([]int{22}, l.ns.Listen)
	if err != nil {
		return nil, err
	}
	port := fw[0].host
	l.login = sshLogin{command: l.ns.Command, key: key, known: filepath.Join(work, "known_hosts"), user: o.SSHUser, port: port}
	return l, nil
}

// serveFront listens on the metadata address in the namespace and passes
// each request to the service, noting the stages it shows.
func (l *ec2Launch) serveFront(sock string) error {
	ln, err := l.ns.Listen("tcp", "169.254.169.254:80")
	if err != nil {
		return fmt.Errorf("boot test: listen on the metadata address: %w", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "imds"})
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	l.web = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.st.reach(StageMetadata)
		if strings.HasSuffix(r.URL.Path, "/openssh-key") {
			l.st.reach(StageKey)
		}
		proxy.ServeHTTP(w, r)
	})}
	go l.web.Serve(ln)
	return nil
}

func (l *ec2Launch) close() {
	if l.web != nil {
		l.web.Close()
	}
	if l.meta != nil {
		l.meta.Close()
	}
	if l.ns != nil {
		l.ns.Close()
	}
}

// guestMAC is qemu's default for the first NIC, which the metadata lists.
const guestMAC = "52:54:00:12:34:56"

// ec2Args is the VM without its accelerator; uefi are the firmware's
// arguments in uefi mode (platform.uefiArgs).
func ec2Args(p platform, disk, mode string, memMiB, sshPort int, fw []forward, uefi []string) []string {
	uuid := "ec2" + newUUID()[3:]
	netdev := "user,id=net0,hostfwd=tcp:127.0.0.1:" + strconv.Itoa(sshPort) + "-:22"
	for _, f := range fw {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.host, f.guest)
	}
	args := []string{"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-machine", p.machine, "-m", strconv.Itoa(memMiB), "-smp", "2",
		"-uuid", uuid, "-smbios", "type=1,manufacturer=Amazon EC2,product=" + p.instanceType + ",serial=" + uuid,
		"-drive", "file=" + disk + ",format=raw,if=none,id=root,cache=unsafe",
		"-device", "nvme,drive=root,serial=vol" + randHexN(9)[:17],
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,mac=" + guestMAC + ",romfile="}
	if mode == "uefi" {
		args = append(args, uefi...)
	}
	return args
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randHexN(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runEC2 launches the scratch disk like EC2 in boot mode mode and fills
// in res.
func runEC2(ctx context.Context, p platform, qemu, disk, work string, part int, im *plugin.Image, mode string, o Options, res *Result, log *slog.Logger) error {
	var uefi []string
	if mode == "uefi" {
		var err error
		if uefi, err = p.uefiArgs(work); err != nil {
			return err
		}
	}
	l, err := newEC2Launch(ctx, p, im, work, o)
	if err != nil {
		return err
	}
	defer l.close()
	fw, err := forwardsOn(o.ExpectHTTP, l.ns.Listen)
	if err != nil {
		return err
	}
	res.Like, res.BootMode, res.SSHUser = LikeEC2, mode, o.SSHUser
	m := vm{plat: p, qemu: qemu, args: ec2Args(p, disk, mode, o.MemoryMiB, l.login.port, fw, uefi), fw: fw, command: l.ns.Command,
		onLine: l.st.console, ready: make(chan struct{}), dial: l.ns.Dial,
		diagnose: func(wait time.Duration) string { return l.st.diagnose(p.firmwareName(mode), o.SSHUser, wait) }}
	probeKernel := func() string { return kernelForProbe(ctx, disk, part, work, log) }
	stop := l.probeSSH(ctx, m.ready, log)
	defer stop()
	out, err := bootWithFallback(ctx, m, probeKernel, o, res, log)
	if err != nil {
		return err
	}
	res.Passed, res.Reason, res.Tail, res.HTTP, res.Stages = out.passed, out.reason, out.tail, out.http, l.st.list()
	if res.Passed {
		res.SSH, res.HostKeys = l.login.String(), hostKeys(l.login.known)
		log.Info("logged in over ssh", "user", o.SSHUser, "host_keys", strings.Join(res.HostKeys, ", "))
	}
	return nil
}

// probeSSH tries the login every few seconds, once the system runs, until
// it works (closing ready) or stop is called.
func (l *ec2Launch) probeSSH(ctx context.Context, ready chan struct{}, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(3 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !l.st.has(StageSystem) {
				continue
			}
			a := l.login.try(ctx)
			if a.answered {
				l.st.reach(StageSSH)
			}
			l.st.mu.Lock()
			l.st.denied = a.denied
			l.st.mu.Unlock()
			if a.ok {
				l.st.reach(StageLogin)
				close(ready)
				return
			}
			log.Debug("ssh login not yet", "detail", a.detail)
		}
	}()
	return func() { cancel(); <-done }
}

// launchOf is how to launch the image and, like EC2, in which boot mode:
// the disk's own loaders decide (loaders), and Options may ask for one.
func launchOf(ctx context.Context, disk string, im *plugin.Image, o Options, p platform) (like, mode string, err error) {
	bios, uefi, err := loaders(ctx, disk, im)
	if err != nil {
		return "", "", err
	}
	return chooseLaunch(bios, uefi, o, p)
}

// chooseLaunch is launchOf for a disk with the given loaders. An
// architecture that boots through UEFI only (arm64) has no BIOS loader
// whatever the disk holds, and refuses legacy-bios.
func chooseLaunch(bios, uefi bool, o Options, p platform) (like, mode string, err error) {
	if p.uefiOnly {
		if o.BootMode == "legacy-bios" {
			return "", "", fmt.Errorf("boot test: boot mode legacy-bios: %s instances (Graviton) boot through UEFI only; use --test-boot-mode uefi", p.arch)
		}
		bios = false
	}
	switch o.Like {
	case "":
		if !bios && !uefi {
			return LikeKernel, "", nil
		}
	case LikeKernel:
		return LikeKernel, "", nil
	case LikeEC2:
	default:
		return "", "", fmt.Errorf("boot test: like %q: ec2 or kernel", o.Like)
	}
	switch o.BootMode {
	case "":
		// As EC2's uefi-preferred on a Nitro instance: UEFI when the disk has it.
		if uefi || !bios {
			return LikeEC2, "uefi", nil
		}
		return LikeEC2, "legacy-bios", nil
	case "uefi", "legacy-bios":
		return LikeEC2, o.BootMode, nil
	}
	return "", "", fmt.Errorf("boot test: boot mode %q: legacy-bios or uefi", o.BootMode)
}

// loaders says which firmware boots the disk, read from the disk itself
// (a tag may be missing, as on an imported image, or wrong).
func loaders(ctx context.Context, disk string, im *plugin.Image) (bios, uefi bool, err error) {
	l, err := bootdisk.Detect(ctx, disk)
	if err != nil {
		return false, false, fmt.Errorf("boot test: read the disk's boot loaders: %w", err)
	}
	return l.BIOS, l.HasUEFI(im.Architecture), nil
}

// kernelForProbe copies the image's kernel out of the scratch disk, read
// only, for the KVM probe ("" when there is none).
func kernelForProbe(ctx context.Context, disk string, part int, work string, log *slog.Logger) string {
	var kernel string
	err := withRoot(ctx, disk, part, work, syscall.MS_RDONLY, func(r *os.Root) (err error) {
		kernel, _, _, err = copyKernel(r, work)
		return err
	})
	if err != nil {
		log.Debug("no kernel for the KVM probe", "err", err)
	}
	return kernel
}
