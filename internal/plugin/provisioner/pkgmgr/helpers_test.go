package pkgmgr_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fakechroot"
)

// newDriver drives b in c with the fake's clock, 1 ms backoff and three
// attempts; edit changes the options.
func newDriver(t *testing.T, b pkgmgr.Backend, c *fakechroot.Chroot, edit func(*pkgmgr.Options)) (*pkgmgr.Driver, *testutil.SyncBuffer) {
	t.Helper()
	log := &testutil.SyncBuffer{}
	o := pkgmgr.Options{Retries: 3, DownloadRetries: 3, Clean: true, TmpDir: t.TempDir(), Backoff: time.Millisecond,
		Now: c.Now, Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&o)
	}
	return pkgmgr.New(b, o), log
}

// wantCommands checks the commands c ran, in order: each must contain
// its counterpart in want.
func wantCommands(t *testing.T, c *fakechroot.Chroot, want ...string) {
	t.Helper()
	got := c.Commands()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.Contains(got[i], want[i])
	}
	if !ok {
		t.Errorf("commands:\n  %s\nwant (each containing):\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// firstLine is what the console shows of an error first.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// capture is real apt-get or dpkg output kept by internal/logging's tests.
func capture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "logging", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// packageFile is a local package file to install (its content is the
// fake's business).
func packageFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("package"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// noStaging checks that nothing staged is left in the image.
func noStaging(t *testing.T, c *fakechroot.Chroot) {
	t.Helper()
	if b := c.Bound(); len(b) > 0 {
		t.Errorf("still bound into the image: %v", b)
	}
	if m, _ := filepath.Glob(filepath.Join(c.Path(), "tmp", "aminator-*")); len(m) > 0 {
		t.Errorf("staging left in the image's /tmp: %v", m)
	}
}
