package boot

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/testutil"
)

// TestBootableFoundation builds one foundation and runs on it, side by
// side, the seed's base platform (a long install and a slow boot) and the
// seed's pipeline, whose app brings a kernel and GRUB and whose app's two
// launches also stand in for a broken KVM; the whole runs in parallel with
// the other foundation tests. The foundation is a reproducible one (the
// user's default cloud profile and hybrid layout, with an epoch), so that
// the bakes and boots show a reproducible foundation works as any, and
// Reproducible builds it again to compare the disks.
func TestBootableFoundation(t *testing.T) {
	c := isolated(t)
	f := mustOK(t, c.Aminate(t, "foundation", "-n", "debian-bookworm", "-s", "f1", "--source-date-epoch", reproEpoch))
	t.Run("Reproducible", func(t *testing.T) { t.Parallel(); reproducibleFoundation(t, c, f) })
	t.Run("Platform", func(t *testing.T) { t.Parallel(); basePlatform(t, c, f) })
	t.Run("Pipeline", func(t *testing.T) { t.Parallel(); foundationBaseAppPipeline(t, c, f) })
}

// The seed's whole pipeline: foundation -> base (a meta package) ->
// candidate -> release -> an app baked against base:release and boot
// tested, with lineage, package diffs and an export. The app is a package
// written for Debian's cloud images that brings its own kernel and GRUB
// (kernel_grub_test.go): its launches boot that kernel in both modes.
func foundationBaseAppPipeline(t *testing.T, c *cloud, f string) {
	fi := c.ShowImage(t, f)
	for k, v := range map[string]string{"role": "foundation", "family": "debian-bookworm", "release": "bookworm", "distribution": "debian",
		"layout": "hybrid", "profile": "cloud", "boot": "bios+uefi", "root_partition": "1", "filesystem": "ext4"} {
		if fi.Tags[k] != v {
			t.Errorf("foundation tag %s = %q, want %q", k, fi.Tags[k], v)
		}
	}
	if !strings.HasPrefix(fi.Tags["kernel"], "6.") || fi.Tags["packages"] == "" {
		t.Errorf("foundation kernel %q packages %q", fi.Tags["kernel"], fi.Tags["packages"])
	}
	c.Inspect(t, f, 1, func(root string) {
		cloudFoundationFiles(t, root)
		if got := readFile(t, filepath.Join(root, "etc/hostname")); got != "localhost\n" {
			t.Errorf("hostname %q", got)
		}
		// systemd-resolved's stub, not the host's resolv.conf.
		if got, err := os.Readlink(filepath.Join(root, "etc/resolv.conf")); err != nil || got != "../run/systemd/resolve/stub-resolv.conf" {
			t.Errorf("resolv.conf links to %q (%v)", got, err)
		}
		if got := readFile(t, filepath.Join(root, "etc/machine-id")); got != "" {
			t.Errorf("machine-id %q, want empty", got)
		}
		if got := readFile(t, filepath.Join(root, "etc/fstab")); !strings.Contains(got, "UUID=") {
			t.Errorf("fstab %q", got)
		}
		if ents, _ := os.ReadDir(filepath.Join(root, "var/lib/apt/lists")); len(ents) > 2 {
			t.Errorf("apt lists not cleared: %d entries", len(ents))
		}
	})

	dir := t.TempDir()
	meta := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-base-meta", Version: "1.0", Depends: "hello"})
	// The base is boot-tested as it is baked, like EC2 in legacy-bios mode.
	// Every launch here may take 8 minutes, not the default 5: on this 2-core
	// machine at load 15-18 (other suites running) a UEFI launch took over 5.
	b1 := mustOK(t, c.Aminate(t, "-B", f, "-n", "aminator-base", "-s", "b1", "--test", "--test-boot-mode", "legacy-bios", "--boot-timeout", "480", meta))
	bi := c.ShowImage(t, b1)
	if bi.Tags["role"] != "base" || bi.Tags["family"] != "aminator-base" || bi.Tags["lineage"] != f || bi.Tags["boot_test"] != "passed" || bi.Tags["boot"] != "bios+uefi" {
		t.Errorf("base tags: %v", bi.Tags)
	}

	// Channels.
	r := c.Aminate(t, "-b", "aminator-base:release", "-s", "early", meta)
	if r.Code != 1 || !strings.Contains(r.Stderr, `no image of family "aminator-base" carries the label "release"`) {
		t.Errorf("nothing released yet: exit %d\n%s", r.Code, r.Stderr)
	}
	mustOK(t, c.Aminate(t, "images", "promote", b1, "--label", "candidate"))
	if out := mustOK(t, c.Aminate(t, "images", "promote", b1, "--label", "release")); !strings.Contains(out, "candidate -> release") {
		t.Errorf("promote output %q", out)
	}
	r = c.Aminate(t, "images", "promote", b1, "--label", "candidate")
	if r.Code != 1 || !strings.Contains(r.Stderr, "demoting") {
		t.Errorf("demote: exit %d\n%s", r.Code, r.Stderr)
	}
	r = c.Aminate(t, "images", "promote", b1, "--label", "previous")
	if r.Code != 1 || !strings.Contains(r.Stderr, "kept automatically") {
		t.Errorf("promote to previous: exit %d\n%s", r.Code, r.Stderr)
	}

	app := appWithKernel(t, dir)
	r = c.Aminate(t, "-b", "aminator-base", "--label", "release", "-s", "a1", "--root-volume-size", "3", app)
	a1 := mustOK(t, r)
	kernel := checkKernelBake(t, c, a1, r.Stderr)
	twoInstances(t, c, a1, kernel)
	// On the foundation, not the app: a failed `aminate test` (--accel kvm
	// with a KVM that hangs) tags its image boot_test=failed.
	accelRefusals(t, c, f)
	ai := c.ShowImage(t, a1)
	for k, v := range map[string]string{"role": "app", "base_ami_id": b1, "base_ami_label": "aminator-base:release", "boot_test": "passed", "lineage": f + "," + b1, "base_ami_version": "aminator-base-meta-1.0-0"} {
		if ai.Tags[k] != v {
			t.Errorf("app tag %s = %q, want %q", k, ai.Tags[k], v)
		}
	}
	r = c.Aminate(t, "images", "promote", a1, "--label", "release")
	if r.Code != 1 || !strings.Contains(r.Stderr, "not a base image") {
		t.Errorf("promoting an app: exit %d\n%s", r.Code, r.Stderr)
	}
	consoles, _ := filepath.Glob(filepath.Join(c.Dir, "log", "*.console.log"))
	if len(consoles) == 0 {
		t.Error("no console log saved beside the bake log")
	}

	// Lineage.
	var chain []struct{ ID, Role string }
	if err := json.Unmarshal([]byte(mustOK(t, c.Aminate(t, "images", "show", "--lineage", "--output", "json", a1))), &chain); err != nil {
		t.Fatal(err)
	}
	if len(chain) != 3 || chain[0].ID != f || chain[1].ID != b1 || chain[2].ID != a1 || chain[0].Role != "foundation" || chain[1].Role != "base" || chain[2].Role != "app" {
		t.Errorf("lineage %+v", chain)
	}
	if out := mustOK(t, c.Aminate(t, "images", "show", "--lineage", a1)); !regexp.MustCompile(`->\s+` + b1).MatchString(out) {
		t.Errorf("lineage text:\n%s", out)
	}

	// Package diffs.
	out := mustOK(t, c.Aminate(t, "images", "diff", f, b1))
	for _, w := range []string{"+ hello ", "+ aminator-base-meta 1.0", "2 added, 0 removed"} {
		if !strings.Contains(out, w) {
			t.Errorf("diff foundation base lacks %q:\n%s", w, out)
		}
	}
	out = mustOK(t, c.Aminate(t, "images", "diff", b1, a1))
	for _, w := range []string{"+ aminator-app 2.0-1", "+ grub-pc ", "+ linux-image-amd64 ", " added, 0 removed, 0 upgraded"} {
		if !strings.Contains(out, w) {
			t.Errorf("diff base app lacks %q:\n%s", w, out)
		}
	}

	// A second release: the first becomes previous.
	meta2 := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-base-meta", Version: "1.1", Depends: "hello"})
	b2 := mustOK(t, c.Aminate(t, "-B", f, "-n", "aminator-base", "-s", "b2", meta2))
	mustOK(t, c.Aminate(t, "images", "promote", b2, "--label", "release"))
	if id := c.ShowImage(t, "aminator-base:previous").ID; id != b1 {
		t.Errorf("previous is %s, want %s", id, b1)
	}
	if id := c.ShowImage(t, "aminator-base:release").ID; id != b2 {
		t.Errorf("release is %s, want %s", id, b2)
	}
	if out := mustOK(t, c.Aminate(t, "images", "list", "--family", "aminator-base", "--label", "release")); !strings.Contains(out, b2) || strings.Contains(out, b1) {
		t.Errorf("images list --family --label:\n%s", out)
	}
	if out := mustOK(t, c.Aminate(t, "images", "list", "--role", "foundation")); !strings.Contains(out, f) || strings.Contains(out, b1) {
		t.Errorf("images list --role foundation:\n%s", out)
	}
	out = mustOK(t, c.Aminate(t, "images", "diff", b1, b2))
	if !strings.Contains(out, "^ aminator-base-meta 1.0 -> 1.1 (upgraded)") {
		t.Errorf("diff b1 b2:\n%s", out)
	}

	// Export.
	qcow := filepath.Join(dir, "app.qcow2")
	mustOK(t, c.Aminate(t, "images", "export", a1, qcow))
	if b, err := exec.Command("qemu-img", "check", qcow).CombinedOutput(); err != nil {
		t.Errorf("qemu-img check: %v\n%s", err, b)
	}
	if b, _ := exec.Command("qemu-img", "info", "--output", "json", qcow).Output(); !strings.Contains(string(b), `"format": "qcow2"`) {
		t.Errorf("not qcow2: %s", b)
	}
	raw := filepath.Join(dir, "app.raw")
	mustOK(t, c.Aminate(t, "images", "export", "--format", "raw", a1, raw))
	if st, err := os.Stat(raw); err != nil || st.Size() != 3<<30 {
		t.Errorf("raw export: %v %v", st, err)
	}
	if r := c.Aminate(t, "images", "export", "--format", "vdi", a1, raw); r.Code != 2 {
		t.Errorf("bad format: exit %d", r.Code)
	}

	// Attested: every image's SBOMs validate against the schemas and list
	// what dpkg-query lists in its disk; the app verifies with its whole
	// lineage, down to the foundation.
	for _, id := range []string{f, b1, a1} {
		c.CheckSBOMs(t, id, 1)
	}
	out = mustOK(t, c.Aminate(t, "verify", a1))
	for _, id := range []string{a1, b1, f} {
		if !strings.Contains(out, "ok   "+id) {
			t.Errorf("verify %s: no verdict ok for %s:\n%s", a1, id, out)
		}
	}
}

// A GPT + XFS foundation without a kernel: bakes find the root partition
// from the base's tags, and its boot test fails with a clear message.
func TestNoKernelGPTXFSFoundation(t *testing.T) {
	c := isolated(t)
	r := c.Aminate(t, "foundation", "-n", "nokernel", "-s", "x1", "--profile", "minimal", "--no-kernel", "--layout", "gpt", "--fs", "xfs", "--size", "1", "--test")
	if r.Code != 1 || !strings.Contains(r.Stderr, "has no kernel") {
		t.Fatalf("boot test of a kernel-less foundation: exit %d\n%s", r.Code, r.Stderr)
	}
	id := strings.TrimSpace(r.Stdout)
	im := c.ShowImage(t, id)
	if im.Tags["boot_test"] != "failed" || im.Tags["root_partition"] != "1" || im.Tags["filesystem"] != "xfs" || im.Tags["kernel"] != "none" {
		t.Errorf("tags %v", im.Tags)
	}
	// Launched like EC2 anyway, the firmware finds nothing to boot, and the
	// failure says so.
	r = c.Aminate(t, "test", "--like", "ec2", "--test-boot-mode", "legacy-bios", "--timeout", "30s", id)
	if r.Code != 1 || !strings.Contains(r.Stderr, "no loader: the BIOS (SeaBIOS) found nothing on the disk that started a kernel") {
		t.Errorf("a launch like EC2 of a loader-less disk: exit %d\n%s", r.Code, r.Stderr)
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-onxfs", Version: "1.0", Files: map[string]string{"/opt/x": "x\n"}})
	app := mustOK(t, c.Aminate(t, "-B", id, "-s", "xfs", "--root-volume-size", "2", deb))
	if p := c.ShowImage(t, app).Tags["root_partition"]; p != "1" {
		t.Errorf("app root_partition %q", p)
	}
	// The XFS root grew (online, once mounted) with its partition.
	c.Inspect(t, app, 1, func(root string) {
		var st syscall.Statfs_t
		syscall.Statfs(root, &st)
		if size := int64(st.Blocks) * st.Bsize; size < 1900<<20 {
			t.Errorf("xfs root is %d MiB after growing to 2 GiB", size>>20)
		}
		if got := readFile(t, filepath.Join(root, "opt/x")); got != "x\n" {
			t.Errorf("/opt/x = %q", got)
		}
	})
}

// A UEFI disk boots by itself: firmware (OVMF), then systemd-boot from its
// EFI system partition, then the kernel; an app baked on it, with a
// larger root, boots the same way.
func TestUEFIFoundation(t *testing.T) {
	c := isolated(t)
	// One boot, the app's: it proves the foundation's disk, baked and grown,
	// boots through the firmware (foundation --test is run by the GPT test).
	f := mustOK(t, c.Aminate(t, "foundation", "-n", "debian-uefi", "-s", "u1", "--layout", "uefi"))
	fi := c.ShowImage(t, f)
	if fi.Tags["boot"] != "uefi" || fi.Tags["root_partition"] != "2" || fi.Tags["layout"] != "uefi" {
		t.Errorf("uefi foundation tags %v", fi.Tags)
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-onuefi", Version: "1.0", Files: map[string]string{"/opt/u": "u\n"}})
	app := mustOK(t, c.Aminate(t, "-B", f, "-s", "uefi", "--root-volume-size", "3", "--test", "--boot-timeout", "480", deb))
	ai := c.ShowImage(t, app)
	if ai.Tags["boot"] != "uefi" || ai.Tags["boot_test"] != "passed" || ai.Root().VolumeSizeGiB != 3 {
		t.Errorf("app on uefi: tags %v, root %d GiB", ai.Tags, ai.Root().VolumeSizeGiB)
	}
	if r := c.Aminate(t, "foundation", "-n", "bad", "--layout", "uefi", "--no-kernel"); r.Code != 2 || !strings.Contains(r.Stderr, "--no-kernel") {
		t.Errorf("uefi without a kernel: exit %d\n%s", r.Code, r.Stderr)
	}
}

// cloudFoundationFiles checks what the cloud profile puts in the image and
// what no image may carry.
func cloudFoundationFiles(t *testing.T, root string) {
	t.Helper()
	for rel, want := range map[string]string{
		"etc/cloud/cloud.cfg.d/01_aminator.cfg":          "name: admin",
		"etc/systemd/network/90-aminator-dhcp.network":   "Type=ether",
		"etc/systemd/timesyncd.conf.d/aminator-ec2.conf": "NTP=169.254.169.123",
		"boot/grub/grub.cfg":                             "console=ttyS0",
	} {
		if got := readFile(t, filepath.Join(root, rel)); !strings.Contains(got, want) {
			t.Errorf("/%s lacks %q:\n%s", rel, want, got)
		}
	}
	for _, rel := range []string{"usr/bin/cloud-init", "usr/sbin/sshd", "usr/bin/growpart", "boot/grub/i386-pc/normal.mod", "boot/grub/x86_64-efi/linux.mod",
		"etc/systemd/system/multi-user.target.wants/systemd-networkd.service"} {
		if _, err := os.Lstat(filepath.Join(root, rel)); err != nil {
			t.Errorf("the cloud foundation lacks /%s: %v", rel, err)
		}
	}
	if keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*")); len(keys) != 0 {
		t.Errorf("SSH host keys in the image: %v", keys)
	}
	if k, _ := filepath.Glob(filepath.Join(root, "boot/vmlinuz-*-cloud-amd64")); len(k) == 0 {
		t.Error("no cloud kernel in /boot")
	}
}

// twoInstances launches an image like EC2 twice, in each boot mode: both
// boot its newest kernel, kernel, and log in over ssh as admin with the key
// from the instance metadata, and each instance has SSH host keys of its own. Each launch also stands in
// for a broken KVM, one way each (accel_test.go), and must fall back to
// TCG and say why: a KVM that fails is a path of the same launch, so it
// costs no boot of its own.
func twoInstances(t *testing.T, c *cloud, id, kernel string) {
	t.Helper()
	var keys [2][]string
	for i, l := range []struct {
		mode string
		kvm  brokenKVM
	}{{"uefi", silentKVM}, {"legacy-bios", hangingKVM}} {
		args := append([]string{"test", "--output", "json", "--timeout", "8m", "--test-boot-mode", l.mode}, l.kvm.args...)
		r := c.AminateEnv(t, l.kvm.env(t), append(args, id)...)
		var res boottest.Result
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != 0 {
			t.Fatalf("launch like EC2 in %s mode with %s: exit %d, %v\nstdout:\n%s\nstderr:\n%s", l.mode, l.kvm.name, r.Code, err, r.Stdout, r.Stderr)
		}
		if !res.Passed || res.Like != "ec2" || res.BootMode != l.mode || res.SSHUser != "admin" || !strings.HasPrefix(res.SSH, "ssh -i ") || len(res.HostKeys) == 0 {
			t.Errorf("%s: result %+v", l.mode, res)
		}
		var names []string
		for _, s := range res.Stages {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, ","); got != "kernel,system,metadata,key,ssh,login" {
			t.Errorf("%s: stages %s", l.mode, got)
		}
		l.kvm.check(t, c, r, res)
		bootedKernel(t, l.mode, res.ConsoleLog, kernel)
		t.Logf("%s, %s: logged in after %s (%s): %s", l.mode, l.kvm.name, res.Duration.Round(time.Second), res.Accel, res.SSH)
		keys[i] = res.HostKeys
	}
	for _, k := range keys[0] {
		if slices.Contains(keys[1], k) {
			t.Errorf("two instances of %s share the host key %s", id, k)
		}
	}
}
