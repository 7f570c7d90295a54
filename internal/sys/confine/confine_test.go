package confine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aminator-go/aminator/internal/sys/confine"
)

// Only a regular file reached without a symlink and without leaving the
// directory opens: a symlink in a middle component (to a directory inside
// or outside), a symlinked file, `..` out and an absolute path elsewhere
// are refused, and so is a FIFO (without blocking).
func TestOpen(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pkgs")
	outside := filepath.Join(root, "secret")
	for _, d := range []string{filepath.Join(dir, "team", "real"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "team", "real", "app.deb"), "app")
	write(filepath.Join(outside, "key.deb"), "secret")
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(outside, "out")                      // a directory outside
	link(filepath.Join(dir, "team"), "alias") // a directory inside
	link(filepath.Join(outside, "key.deb"), "key.deb")
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, err string }{
		{path: filepath.Join(dir, "team", "real", "app.deb")},
		{path: "team/real/app.deb"},
		{path: filepath.Join(dir, "out", "key.deb"), err: "symlink"},
		{path: filepath.Join(dir, "alias", "real", "app.deb"), err: "symlink"},
		{path: filepath.Join(dir, "key.deb"), err: "symlink"},
		{path: dir + "/team/../../secret/key.deb", err: "not under"},
		{path: "team/../../secret/key.deb", err: "leads out of"},
		{path: filepath.Join(outside, "key.deb"), err: "not under"},
		{path: filepath.Join(dir, "fifo.deb"), err: "not a regular file"},
		{path: filepath.Join(dir, "team"), err: "not a regular file"},
		{path: filepath.Join(dir, "missing.deb"), err: "no such file"},
	} {
		f, err := confine.Open(dir, tc.path)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.path, err)
				continue
			}
			f.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			if f != nil {
				f.Close()
			}
			t.Errorf("%s: %v, want %q", tc.path, err, tc.err)
		}
	}
	want := sha256.Sum256([]byte("app"))
	if sum, err := confine.Hash(dir, "team/real/app.deb"); err != nil || sum != hex.EncodeToString(want[:]) {
		t.Errorf("Hash: %s %v", sum, err)
	}
}
