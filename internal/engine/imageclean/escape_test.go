package imageclean

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// An image's files are untrusted: a symlink in it, however it points,
// never makes Clean remove or write anything outside the image. Only the
// link itself goes.
func TestSymlinksNeverLeadOut(t *testing.T) {
	host := t.TempDir() // stands for the host's files
	hostFile := filepath.Join(host, "machine-id")
	hostSSH := filepath.Join(host, "ssh")
	hostTmp := filepath.Join(host, "tmp")
	hostUnits := filepath.Join(host, "units")
	for _, d := range []string{hostSSH, hostTmp, hostUnits} {
		mkdir(t, d)
	}
	for _, f := range []string{hostFile, filepath.Join(hostSSH, "ssh_host_rsa_key"), filepath.Join(hostTmp, "x"), filepath.Join(host, "history")} {
		write(t, f, "host\n")
	}

	dir := t.TempDir()
	tree(t, dir, map[string]string{"usr/sbin/sshd": "", "home/alice/.profile": ""})
	links := map[string]string{
		"etc/ssh":                      hostSSH,                         // absolute, out
		"var/lib/dbus/machine-id":      hostFile,                        // a host file
		"var/lib/dhcp/dhclient.leases": "../../../../../../" + hostFile, // relative, out
		"root/.bash_history":           filepath.Join(host, "history"),
		"home/bob":                     host,    // a home that is the host's
		"tmp":                          hostTmp, // contents of a directory out
		"var/tmp":                      "../../../../../../../" + hostTmp,
		"etc/mailname":                 hostFile,
		"var/lib/cloud/instance":       host,
		"home/alice/.viminfo":          hostFile,
		"etc/systemd/system":           hostUnits, // the unit would be written out
		"var/lib/systemd/random-seed":  hostFile,
	}
	for rel, target := range links {
		p := filepath.Join(dir, rel)
		mkdir(t, filepath.Dir(p))
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	// A hard link to a host file (possible only on one filesystem) is
	// replaced, not truncated.
	mkdir(t, filepath.Join(dir, "etc"))
	if err := os.Link(hostFile, filepath.Join(dir, "etc/machine-id")); err != nil {
		t.Fatal(err)
	}
	root := openRoot(t, dir)
	rep, err := Clean(root, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "install aminator-ssh-host-keys.service") {
		t.Errorf("%v, want the first-boot unit refused: /etc/systemd/system leads out of the image", err)
	}
	for _, p := range []string{"/etc/ssh", "/tmp", "/var/tmp", "/home/bob/.bash_history"} {
		if !slices.Contains(rep.Skipped, p) {
			t.Errorf("%s not reported skipped: %q", p, rep.Skipped)
		}
	}

	// Nothing of the host changed.
	for _, f := range []string{hostFile, filepath.Join(hostSSH, "ssh_host_rsa_key"), filepath.Join(hostTmp, "x"), filepath.Join(host, "history")} {
		if b, err := os.ReadFile(f); err != nil || string(b) != "host\n" {
			t.Errorf("host file %s: %q %v", f, b, err)
		}
	}
	if ents, _ := os.ReadDir(hostUnits); len(ents) != 0 {
		t.Errorf("wrote %d files in the host's directory", len(ents))
	}
	// The links in the image that were themselves to be removed are gone;
	// etc/machine-id is an empty file of the image's own.
	for _, rel := range []string{"var/lib/dbus/machine-id", "var/lib/dhcp/dhclient.leases", "var/lib/systemd/random-seed", "root/.bash_history", "var/lib/cloud/instance", "home/alice/.viminfo"} {
		if _, err := os.Lstat(filepath.Join(dir, rel)); !os.IsNotExist(err) {
			t.Errorf("the link /%s is left: %v", rel, err)
		}
	}
	if st, err := os.Lstat(filepath.Join(dir, "etc/machine-id")); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
		t.Errorf("/etc/machine-id is not an empty file: %v %v", st, err)
	}
}

// Without the unit to write, the same image cleans: what leads out is
// skipped and said.
func TestSymlinkedDirectoriesAreSkipped(t *testing.T) {
	host := t.TempDir()
	write(t, filepath.Join(host, "ssh_host_rsa_key"), "host\n")
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "etc"))
	if err := os.Symlink(host, filepath.Join(dir, "etc/ssh")); err != nil {
		t.Fatal(err)
	}
	rep, err := Clean(openRoot(t, dir), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(host, "ssh_host_rsa_key")); err != nil || string(b) != "host\n" {
		t.Errorf("the host's key: %q %v", b, err)
	}
	if len(rep.Removed) != 0 || len(rep.Skipped) != 1 || rep.Skipped[0] != "/etc/ssh" {
		t.Errorf("report %+v, want /etc/ssh skipped and nothing removed", rep)
	}
}
