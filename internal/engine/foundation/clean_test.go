package foundation

import (
	"os"
	"path/filepath"
	"testing"
)

// The tree a foundation makes its filesystem from is cleaned with the
// bake's table (imageclean): what the bootstrap left (apt's lists, its
// logs, host keys, the dbus machine-id) is gone by then, apt's partial/
// and lock and the package database stay.
func TestFoundationTreeCleaned(t *testing.T) {
	f := newFakes(t)
	tree := func() string {
		works, _ := filepath.Glob(filepath.Join(f.scratch, "aminator-foundation-*"))
		if len(works) != 1 {
			t.Fatalf("scratch directories %q", works)
		}
		return filepath.Join(works[0], "root")
	}
	left := []string{"var/log/dpkg.log", "var/log/apt/term.log", "var/lib/dbus/machine-id", "etc/ssh/ssh_host_rsa_key",
		"var/cache/apt/archives/bash_5.2-1_amd64.deb", "var/cache/apt/pkgcache.bin"}
	stay := []string{"var/lib/apt/lists/lock", "var/lib/apt/lists/partial/", "var/lib/dpkg/status"}
	f.rec.On("Host.Bootstrap", func() {
		for _, rel := range append(left, stay...) {
			p := filepath.Join(tree(), rel)
			if rel[len(rel)-1] == '/' {
				os.MkdirAll(p, 0o755)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	f.rec.On("Host.MakeFS", func() {
		for _, rel := range append(left, "var/lib/apt/lists/x_Packages") {
			if _, err := os.Lstat(filepath.Join(tree(), rel)); !os.IsNotExist(err) {
				t.Errorf("/%s is in the tree: %v", rel, err)
			}
		}
		for _, rel := range stay {
			if _, err := os.Lstat(filepath.Join(tree(), rel)); err != nil {
				t.Errorf("/%s is not in the tree: %v", rel, err)
			}
		}
	})
	if _, err := f.build(t, "whole"); err != nil {
		t.Fatal(err)
	}
}
