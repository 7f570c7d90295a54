package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

// Real packages with real maintainer scripts still install in the sandbox:
// openssh-server from the mirror generates its host keys and adds its
// user; a package of ours adds a system user with adduser and enables a
// systemd unit with deb-systemd-helper. The host keys openssh-server made
// do not ship (every instance would share them): the image, which has no
// cloud-init, gets the unit that makes them at first boot instead.
func TestSandboxRealPackages(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	r := aminate(t, "-b", baseName, "-s", "sshd", "openssh-server")
	id := mustOK(t, r)
	if !strings.Contains(r.Stderr, "removed from the image") || !strings.Contains(r.Stderr, "SSH host keys") {
		t.Errorf("the bake log does not say the host keys were removed:\n%s", r.Stderr)
	}
	inspect(t, id, 0, func(root string) {
		if s := dpkgStatus(t, root, "openssh-server"); s != "install ok installed" {
			t.Errorf("openssh-server: status %q", s)
		}
		for _, f := range []string{"usr/sbin/sshd", "etc/ssh/sshd_config", "usr/bin/ssh-keygen"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("openssh-server's /%s: %v", f, err)
			}
		}
		if p := readFile(t, filepath.Join(root, "etc/passwd")); !strings.Contains(p, "\nsshd:") {
			t.Errorf("no user sshd in /etc/passwd")
		}
		keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
		if len(keys) != 0 {
			t.Errorf("host keys in the image: %q", keys)
		}
		const unit = "/etc/systemd/system/aminator-ssh-host-keys.service"
		if u := readFile(t, filepath.Join(root, unit)); !strings.Contains(u, "ExecStart=/usr/bin/ssh-keygen -A") {
			t.Errorf("%s:\n%s", unit, u)
		}
		for _, wants := range []string{"ssh.service.wants", "multi-user.target.wants"} {
			link := filepath.Join(root, "etc/systemd/system", wants, "aminator-ssh-host-keys.service")
			if target, err := os.Readlink(link); err != nil || target != unit {
				t.Errorf("the unit is not enabled in %s: %q %v", wants, target, err)
			}
		}
		for _, f := range []string{"var/log/apt/history.log", "var/log/apt/term.log", "var/log/dpkg.log"} {
			if _, err := os.Lstat(filepath.Join(root, f)); !os.IsNotExist(err) {
				t.Errorf("/%s is in the image: %v", f, err)
			}
		}
	})

	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-svcuser", Version: "1.0-1", Depends: "adduser, init-system-helpers",
		Files: map[string]string{"/lib/systemd/system/aminator-svcuser.service": "[Unit]\nDescription=aminator test\n[Service]\nUser=aminator-svc\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"},
		Postinst: `adduser --system --group --no-create-home --home /nonexistent aminator-svc
deb-systemd-helper enable aminator-svcuser.service`,
	})
	id = mustOK(t, aminate(t, "-B", b, "-s", "svcuser", deb))
	inspect(t, id, 0, func(root string) {
		if s := dpkgStatus(t, root, "aminator-svcuser"); s != "install ok installed" {
			t.Errorf("status %q", s)
		}
		if p := readFile(t, filepath.Join(root, "etc/passwd")); !strings.Contains(p, "\naminator-svc:") {
			t.Errorf("no system user aminator-svc in /etc/passwd")
		}
		link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/aminator-svcuser.service")
		if target, err := os.Readlink(link); err != nil || !strings.HasSuffix(target, "aminator-svcuser.service") {
			t.Errorf("unit not enabled: %q %v", target, err)
		}
	})
}

// --script-network gives package scripts the bake's network (here, a
// listener on the host's loopback), says so in the log and tags the image.
func TestSandboxScriptNetwork(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	ln, accepted := hostListener(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{
		Name: "aminator-netscript", Version: "1.0-1",
		Postinst: fmt.Sprintf("bash -c 'echo hi > /dev/tcp/127.0.0.1/%d'", ln.Addr().(*net.TCPAddr).Port),
	})
	r := aminate(t, "-B", b, "-s", "netscript", "--script-network", deb)
	id := mustOK(t, r)
	if accepted.Load() == 0 {
		t.Error("the postinst did not reach the host's loopback with --script-network")
	}
	if !strings.Contains(r.Stderr, "--script-network") || !strings.Contains(r.Stderr, "WARN") {
		t.Errorf("no warning about --script-network:\n%s", r.Stderr)
	}
	if v := showImage(t, id).Tags["script_network"]; v != "true" {
		t.Errorf("tag script_network=%q", v)
	}
	// Without the flag the same package fails: its postinst has no network.
	r = aminate(t, "-B", b, "-s", "nonet", deb)
	if r.Code == 0 {
		t.Error("the postinst reached the host's loopback without --script-network")
	}
}
