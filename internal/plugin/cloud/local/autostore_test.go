package local

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/store/snapstore"
)

// noMkfs hides every mkfs from this test: an empty $PATH and no sbin
// directories to fall back on. It skips where the store would not be
// wanted (the temporary directory has reflinks) or where the kernel, not
// a package, is what lacks (no xfs, no btrfs).
func noMkfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if snapstore.CanReflink(dir) {
		t.Skip("the temporary directory has reflinks: no store of its own is wanted there")
	}
	if !kernelHas("xfs") && !kernelHas("btrfs") {
		t.Skip("this kernel has neither xfs nor btrfs")
	}
	t.Setenv("PATH", t.TempDir())
	old := sbinDirs
	sbinDirs = nil
	t.Cleanup(func() { sbinDirs = old; told.Delete(dir) })
	return dir
}

// infoLines are the lines logged at INFO.
func infoLines(buf *bytes.Buffer) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, "level=INFO") {
			out = append(out, l)
		}
	}
	return out
}

// A new user's host without mkfs.xfs (no setup.sh run): the store stays
// in the state directory, and the command says so once at INFO, with
// why and the package that fixes it, however often the store is readied
// in the process (not once per step); nothing is set up.
func TestNoMkfsSaysWhyOnce(t *testing.T) {
	dir := noMkfs(t)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for range 3 {
		if err := PrepareDataFS(context.Background(), dir, "auto", log); err != nil {
			t.Fatal(err)
		}
	}
	lines := infoLines(&buf)
	if len(lines) != 1 {
		t.Fatalf("%d INFO lines, want 1:\n%s", len(lines), buf.String())
	}
	t.Log(lines[0])
	for _, want := range []string{"no reflink store", "why=\"no mkfs.", "install ", "xfsprogs", "next command then sets the store up"} {
		if !strings.Contains(lines[0], want) && !(want == "xfsprogs" && !kernelHas("xfs")) {
			t.Errorf("the line lacks %q: %s", want, lines[0])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data.yml")); !os.IsNotExist(err) {
		t.Errorf("a store filesystem was recorded: %v", err)
	}

	// Asked for by name, it is an error that says the same.
	err := PrepareDataFS(context.Background(), dir, "xfs", log)
	if kernelHas("xfs") && (err == nil || !strings.Contains(err.Error(), "install xfsprogs")) {
		t.Errorf("store_fs xfs without mkfs.xfs: %v", err)
	}
}

// Once the state directory holds a store, installing the package is not
// enough: the line says to start an empty state directory too.
func TestNoMkfsWithAStoreSaysSo(t *testing.T) {
	dir := noMkfs(t)
	if err := os.MkdirAll(filepath.Join(dir, "data", "store", "snapshots"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "store", "snapshots", "snap-1.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := PrepareDataFS(context.Background(), dir, "auto", slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
		t.Fatal(err)
	}
	lines := infoLines(&buf)
	if len(lines) != 1 || !strings.Contains(lines[0], "install ") || !strings.Contains(lines[0], "on an empty state directory") {
		t.Fatalf("INFO lines %q", lines)
	}
	t.Log(lines[0])
}
