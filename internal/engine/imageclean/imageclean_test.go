package imageclean

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree writes files (relative path: content) under dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		write(t, filepath.Join(dir, rel), content)
	}
}

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func buildHost(t *testing.T, name string) {
	t.Helper()
	old := hostname
	hostname = func() (string, error) { return name, nil }
	t.Cleanup(func() { hostname = old })
}

// instance is a path pattern names: its wildcards made "x".
func instance(pattern string) string { return strings.ReplaceAll(pattern, "*", "x") }

// What the image needs stays: configuration, apt's partial/ and lock,
// the log directories themselves, other logs, cloud-init's scripts.
var kept = map[string]string{
	"etc/ssh/sshd_config": "Port 22\n", "etc/ssh/moduli": "m",
	"var/lib/apt/lists/lock": "", "var/cache/apt/archives/lock": "",
	"var/log/syslog":                       "s",
	"var/lib/cloud/scripts/per-boot/hello": "#!/bin/sh\n", "var/lib/cloud/seed/nocloud/meta-data": "",
	"home/x/.profile": "p", "root/.bashrc": "b", "etc/hostname": "localhost\n",
}

// Every path of the table is removed, and reported under its group in
// the table's order; machine-id is emptied in place; the rest stays.
func TestCleanRemovesTheTable(t *testing.T) {
	buildHost(t, "builder.example.org")
	dir := t.TempDir()
	tree(t, dir, kept)
	mkdir(t, filepath.Join(dir, "var/lib/apt/lists/partial"))
	var want []Removed
	for _, r := range rules {
		g := Removed{Group: r.Group}
		for _, p := range append(append([]string(nil), r.Empty...), r.Remove...) {
			write(t, filepath.Join(dir, instance(p)), "builder.example.org\n")
			g.Paths = append(g.Paths, "/"+instance(p))
		}
		want = append(want, g)
	}
	// The instances' state is a directory, instance a link into it.
	os.Remove(filepath.Join(dir, "var/lib/cloud/instances"))
	tree(t, dir, map[string]string{"var/lib/cloud/instances/i-1/user-data.txt": "secret"})
	os.Remove(filepath.Join(dir, "var/lib/cloud/instance"))
	if err := os.Symlink("/var/lib/cloud/instances/i-1", filepath.Join(dir, "var/lib/cloud/instance")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "etc/machine-id"), 0o444)

	var log bytes.Buffer
	rep, err := Clean(openRoot(t, dir), slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Removed, want) {
		t.Errorf("removed\n got %q\nwant %q", rep.Removed, want)
	}
	if len(rep.Installed) != 0 || len(rep.Skipped) != 0 {
		t.Errorf("report %+v: installed or skipped something", rep)
	}
	for _, g := range want {
		for _, p := range g.Paths {
			if p == "/etc/machine-id" {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
				t.Errorf("%s (%s) is left: %v", p, g.Group, err)
			}
		}
		if !hasLine(log.String(), "level=INFO", g.Group, "paths=") || !hasLine(log.String(), "level=DEBUG", g.Group, g.Paths[0]) {
			t.Errorf("the log has no line for %s:\n%s", g.Group, log.String())
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "etc/machine-id")); err != nil || st.Size() != 0 || st.Mode().Perm() != 0o444 {
		t.Errorf("/etc/machine-id: %v %v, want empty, mode 0444", st, err)
	}
	for rel := range kept {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("%s was removed: %v", rel, err)
		}
	}
	for _, d := range []string{"tmp", "var/tmp", "var/log/apt", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("directory %s is gone: %v", d, err)
		}
	}

	// A second time, nothing is left to remove.
	if rep, err := Clean(openRoot(t, dir), slog.New(slog.DiscardHandler)); err != nil || len(rep.Removed) != 0 {
		t.Errorf("cleaning again: %+v %v", rep, err)
	}
}

// hasLine says a line of the log holds all of words.
func hasLine(log string, words ...string) bool {
	for _, l := range strings.Split(log, "\n") {
		n := 0
		for _, w := range words {
			if strings.Contains(l, w) {
				n++
			}
		}
		if n == len(words) {
			return true
		}
	}
	return false
}

// A mail name that is not the build host's was set on purpose: it stays.
func TestMailNameOfAnotherHostStays(t *testing.T) {
	buildHost(t, "builder")
	dir := t.TempDir()
	tree(t, dir, map[string]string{"etc/mailname": "mail.example.com\n"})
	rep, err := Clean(openRoot(t, dir), slog.New(slog.DiscardHandler))
	if err != nil || len(rep.Removed) != 0 {
		t.Errorf("%+v %v", rep, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/mailname")); string(b) != "mail.example.com\n" {
		t.Errorf("mailname %q", b)
	}
	tree(t, dir, map[string]string{"etc/mailname": "Builder.corp.example.com\n"})
	if rep, err := Clean(openRoot(t, dir), slog.New(slog.DiscardHandler)); err != nil || len(rep.Removed) != 1 {
		t.Errorf("the build host's mail name: %+v %v", rep, err)
	}
}

// An image with sshd and no cloud-init gets the first-boot unit, enabled;
// with cloud-init, or without sshd, none.
func TestSSHHostKeysUnit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		unit  bool
	}{
		{"sshd", []string{"usr/sbin/sshd"}, true},
		{"sshd and cloud-init", []string{"usr/sbin/sshd", "usr/bin/cloud-init"}, false},
		{"no sshd", []string{"usr/bin/ssh"}, false},
	} {
		dir := t.TempDir()
		files := map[string]string{"etc/ssh/ssh_host_ed25519_key": "k"}
		for _, f := range tc.files {
			files[f] = ""
		}
		tree(t, dir, files)
		for range 2 { // and again: a bake on an image that has it
			rep, err := Clean(openRoot(t, dir), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			unit := "/etc/systemd/system/aminator-ssh-host-keys.service"
			want := []string(nil)
			if tc.unit {
				want = []string{unit, "/etc/systemd/system/ssh.service.wants/aminator-ssh-host-keys.service",
					"/etc/systemd/system/multi-user.target.wants/aminator-ssh-host-keys.service"}
			}
			if !reflect.DeepEqual(rep.Installed, want) {
				t.Errorf("%s: installed %q, want %q", tc.name, rep.Installed, want)
			}
			for _, link := range want[min(1, len(want)):] {
				if target, err := os.Readlink(filepath.Join(dir, link)); err != nil || target != unit {
					t.Errorf("%s: %s -> %q %v", tc.name, link, target, err)
				}
			}
			if !tc.unit {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, unit))
			for _, line := range []string{"Before=ssh.service", "ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key", "Type=oneshot",
				"ExecStart=/usr/bin/ssh-keygen -A", "WantedBy=ssh.service multi-user.target"} {
				if !strings.Contains(string(b), "\n"+line) {
					t.Errorf("%s: the unit lacks %q: %v\n%s", tc.name, line, err, b)
				}
			}
		}
	}
}
