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
// systemd unit with deb-systemd-helper.
func TestSandboxRealPackages(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir)
	b := base(t)
	id := mustOK(t, aminate(t, "-b", baseName, "-s", "sshd", "openssh-server"))
	inspect(t, id, 0, func(root string) {
		if s := dpkgStatus(t, root, "openssh-server"); s != "install ok installed" {
			t.Errorf("openssh-server: status %q", s)
		}
		for _, k := range []string{"ssh_host_ed25519_key", "ssh_host_rsa_key", "ssh_host_ecdsa_key.pub"} {
			if st, err := os.Stat(filepath.Join(root, "etc/ssh", k)); err != nil || st.Size() == 0 {
				t.Errorf("host key %s: %v", k, err)
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
	testutil.CheckNoLeaks(t, workDir)
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
	if !strings.Contains(r.stderr, "--script-network") || !strings.Contains(r.stderr, "WARN") {
		t.Errorf("no warning about --script-network:\n%s", r.stderr)
	}
	if v := showImage(t, id).Tags["script_network"]; v != "true" {
		t.Errorf("tag script_network=%q", v)
	}
	// Without the flag the same package fails: its postinst has no network.
	r = aminate(t, "-B", b, "-s", "nonet", deb)
	if r.code == 0 {
		t.Error("the postinst reached the host's loopback without --script-network")
	}
}
