package distro

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A config that boots the kernel links is static; one grub-mkconfig wrote
// (versioned kernels) is not.
func TestStaticGRUB(t *testing.T) {
	for cfg, want := range map[string]bool{
		"menuentry 'Debian' {\n\tlinux /vmlinuz root=UUID=x ro\n\tinitrd /initrd.img\n}\n":                                           true,
		"menuentry 'Debian' {\n\tlinux\t/boot/vmlinuz-6.1.0-50-amd64 root=UUID=x ro\n\tinitrd\t/boot/initrd.img-6.1.0-50-amd64\n}\n": false,
		"linux /vmlinuz\n": false,
		"":                 false,
	} {
		if got := StaticGRUB([]byte(cfg)); got != want {
			t.Errorf("StaticGRUB(%q) = %v, want %v", cfg, got, want)
		}
	}
}

// runScript runs a deferring command's script, made by script with the
// path of a stand-in for the real command, with sh.
func runScript(t *testing.T, script func(real string) string, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	real := filepath.Join(dir, "grub-mkconfig.aminator-deferred")
	if err := os.WriteFile(real, []byte("#!/bin/sh\necho \"real $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "shim")
	if err := os.WriteFile(self, []byte(script(real)), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", append([]string{self}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// grub-mkconfig is deferred when it writes /boot/grub/grub.cfg, however the
// output is spelled, and runs the real command otherwise.
func TestMkconfigDefersOnlyGrubCfg(t *testing.T) {
	for _, args := range [][]string{
		{"-o", "/boot/grub/grub.cfg"},
		{"--output=/boot/grub/grub.cfg"},
		{"--output", "/boot/grub//grub.cfg"},
		{"-o/boot/grub/grub.cfg"},
	} {
		out, err := runScript(t, mkconfigScript, args...)
		if err != nil || !strings.HasPrefix(out, "aminator: deferred grub-mkconfig ") || !strings.Contains(out, deferReason) || strings.Count(out, "\n") != 1 {
			t.Errorf("grub-mkconfig %v: %v, %q", args, err, out)
		}
	}
	for _, args := range [][]string{nil, {"-o", "/tmp/grub.cfg"}, {"--output=/boot/grub/grub.cfg.new"}} {
		out, err := runScript(t, mkconfigScript, args...)
		if want := strings.TrimSpace("real " + strings.Join(args, " ")); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("grub-mkconfig %v: %v, %q, want %q", args, err, out, want)
		}
	}
}

// Without grub-common, grub-mkconfig says so and fails, as the shell would.
func TestMkconfigNotInstalled(t *testing.T) {
	out, err := runScript(t, func(real string) string { return mkconfigScript(real + "-missing") })
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 || out != "grub-mkconfig: not installed\n" {
		t.Errorf("%v, %q", err, out)
	}
}

// The other commands say what was deferred, with their arguments, and why,
// in one line, and succeed.
func TestDeferScripts(t *testing.T) {
	for name, script := range deferScripts() {
		if name == "grub-mkconfig" {
			continue
		}
		out, err := runScript(t, func(string) string { return script }, "--target=i386-pc", "/dev/nvme0n1")
		if err != nil || !strings.HasPrefix(out, "aminator: deferred "+name+" --target=i386-pc /dev/nvme0n1: ") || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: %v, %q", name, err, out)
		}
		out, err = runScript(t, func(string) string { return script })
		if err != nil || !strings.HasPrefix(out, "aminator: deferred "+name+": ") {
			t.Errorf("%s without arguments: %v, %q", name, err, out)
		}
	}
}
