package boot

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/testutil"
)

// kernelAndGRUB bakes onto the cloud foundation a package written for
// Debian's cloud images: it brings grub-pc and Debian's generic kernel (not
// the foundation's cloud flavour), and its postinst runs update-initramfs
// and update-grub. The bake defers the boot-loader commands, saying so in
// its log, keeps aminator's grub.cfg, and the image boots the new kernel
// like EC2 in both boot modes.
func kernelAndGRUB(t *testing.T, c *cloud, f string) {
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-kernel", Version: "1.0", Depends: "grub-pc, linux-image-amd64",
		Postinst: "update-initramfs -u\nupdate-grub",
	})
	start := time.Now()
	r := c.Aminate(t, "-B", f, "-n", "aminator-kernel", "-s", "k1", "--root-volume-size", "3", deb)
	id := mustOK(t, r)
	t.Logf("bake of grub-pc and linux-image-amd64: %s", time.Since(start).Round(time.Second))
	checkDeferredInLog(t, r.Stderr)

	var kernel string
	c.Inspect(t, id, 1, func(root string) {
		for _, p := range []string{"aminator-kernel", "grub-pc", "grub2-common", "linux-image-amd64"} {
			if s := dpkgStatus(t, root, p); s != "install ok installed" {
				t.Errorf("%s: status %q", p, s)
			}
		}
		if cfg := readFile(t, filepath.Join(root, "boot/grub/grub.cfg")); !strings.HasPrefix(cfg, "# written by aminator") || !strings.Contains(cfg, "linux /vmlinuz ") {
			t.Errorf("grub.cfg is not aminator's after the bake:\n%s", cfg)
		}
		// grub2-common's and grub-common's commands in their places, and no
		// trace of the deferral.
		for _, cmd := range []string{"update-grub", "grub-install", "grub-mkconfig"} {
			if b, err := os.ReadFile(filepath.Join(root, "usr/sbin", cmd)); err != nil || strings.Contains(string(b), "aminator") {
				t.Errorf("/usr/sbin/%s is not the package's: %v", cmd, err)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(root, "usr/sbin/*.aminator-*")); len(left) != 0 {
			t.Errorf("left in /usr/sbin: %v", left)
		}
		if d := readFile(t, filepath.Join(root, "var/lib/dpkg/diversions")); strings.Contains(d, "aminator") {
			t.Errorf("dpkg's diversions after the bake:\n%s", d)
		}
		link, err := os.Readlink(filepath.Join(root, "vmlinuz"))
		kernel = strings.TrimPrefix(filepath.Base(link), "vmlinuz-")
		if err != nil || strings.Contains(kernel, "cloud") || !strings.HasSuffix(kernel, "-amd64") {
			t.Fatalf("/vmlinuz -> %q (%v), want the generic kernel the bake installed", link, err)
		}
		if _, err := os.Stat(filepath.Join(root, "boot/initrd.img-"+kernel)); err != nil {
			t.Errorf("no initramfs for %s: %v", kernel, err)
		}
	})

	for _, mode := range []string{"legacy-bios", "uefi"} {
		res := launchLikeEC2(t, c, id, mode)
		console := readFile(t, res.ConsoleLog)
		if !strings.Contains(console, "Linux version "+kernel+" ") {
			got := regexp.MustCompile(`Linux version \S+`).FindString(console)
			t.Errorf("%s: booted %q, want the newest kernel, %s", mode, got, kernel)
		}
	}
}

// checkDeferredInLog reads the bake log: grub-pc's postinst, the kernel's
// postinst.d hook and the package's own postinst each ran update-grub, and
// each run was deferred, in one line with the reason.
func checkDeferredInLog(t *testing.T, stderr string) {
	t.Helper()
	m := regexp.MustCompile(`log[= ](/\S+\.log)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no bake log named:\n%s", stderr)
	}
	log := readFile(t, m[1])
	why := "the image's boot loader is aminator's static GRUB config, which follows /vmlinuz"
	if n := strings.Count(log, "aminator: deferred update-grub"); n < 2 || !strings.Contains(log, why) {
		t.Errorf("update-grub deferred %d times in the bake log %s", n, m[1])
	}
	if !strings.Contains(log, "boot loader commands deferred for the bake") {
		t.Errorf("the bake log %s does not say the boot-loader commands are deferred", m[1])
	}
	if strings.Contains(log, "putting it back") {
		t.Errorf("a package replaced grub.cfg (bake log %s)", m[1])
	}
}

// launchLikeEC2 boots an image like EC2 in a boot mode and checks that the
// default user logged in over ssh.
func launchLikeEC2(t *testing.T, c *cloud, id, mode string) boottest.Result {
	t.Helper()
	start := time.Now()
	r := c.Aminate(t, "test", "--output", "json", "--timeout", "8m", "--test-boot-mode", mode, id)
	var res boottest.Result
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != 0 {
		t.Fatalf("launch like EC2 in %s mode: exit %d, %v\nstdout:\n%s\nstderr:\n%s", mode, r.Code, err, r.Stdout, r.Stderr)
	}
	if !res.Passed || res.Like != "ec2" || res.BootMode != mode || res.SSHUser != "admin" {
		t.Errorf("%s: result %+v", mode, res)
	}
	t.Logf("%s: logged in after %s (%s), the command took %s", mode, res.Duration.Round(time.Second), res.Accel, time.Since(start).Round(time.Second))
	return res
}
