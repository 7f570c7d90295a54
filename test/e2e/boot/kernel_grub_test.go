package boot

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

// appWithKernel is the pipeline's app, a package written for Debian's cloud
// images: besides a file of its own it brings grub-pc and Debian's generic
// kernel (not the foundation's cloud flavour), and its postinst runs
// update-initramfs and update-grub. The app's launches (twoInstances) then
// show that the image boots the new kernel like EC2 in both boot modes, so
// the kernel and GRUB need no launches of their own.
func appWithKernel(t *testing.T, dir string) string {
	t.Helper()
	return testutil.BuildDeb(t, dir, testutil.Deb{
		Name: "aminator-app", Version: "2.0-1", Depends: "grub-pc, linux-image-amd64",
		Files:    map[string]string{"/opt/app/version": "2.0\n"},
		Postinst: "update-initramfs -u\nupdate-grub",
	})
}

// checkKernelBake checks the bake of appWithKernel (its standard error
// and its image id): it deferred the boot-loader commands, saying so in its
// log, kept aminator's grub.cfg, left GRUB's commands and dpkg's diversions
// as the packages made them, and /vmlinuz leads to the generic kernel it
// installed, which has an initramfs. It returns that kernel's version.
func checkKernelBake(t *testing.T, c *cloud, id, stderr string) (kernel string) {
	t.Helper()
	checkDeferredInLog(t, stderr)
	c.Inspect(t, id, 1, func(root string) {
		for _, p := range []string{"aminator-app", "grub-pc", "grub2-common", "linux-image-amd64"} {
			if s := dpkgStatus(t, root, p); s != "install ok installed" {
				t.Errorf("%s: status %q", p, s)
			}
		}
		if got := readFile(t, filepath.Join(root, "opt/app/version")); got != "2.0\n" {
			t.Errorf("/opt/app/version = %q", got)
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
	return kernel
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

// bootedKernel checks that a launch's console shows the kernel it booted
// is kernel.
func bootedKernel(t *testing.T, mode, consoleLog, kernel string) {
	t.Helper()
	console := readFile(t, consoleLog)
	if !strings.Contains(console, "Linux version "+kernel+" ") {
		got := regexp.MustCompile(`Linux version \S+`).FindString(console)
		t.Errorf("%s: booted %q, want the newest kernel, %s", mode, got, kernel)
	}
}
