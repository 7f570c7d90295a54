package isolated

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/testutil"
)

// A bake whose snapshot fills the state directory's filesystem fails with
// "no space left on device" and leaves the store as it was: the same
// files (no chunk, no manifest, no temporary file), no snapshot row, no
// volume. The state directory is a tmpfs with room for the base, the
// bake's volume and its package, but not for the package's chunks too.
func TestDiskFull(t *testing.T) {
	c := isolated(t)
	ctx := context.Background()
	os.MkdirAll(c.State, 0o755)
	if err := mount.Mount("tmpfs", c.State, "tmpfs", 0, "size=2g"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mount.Unmount(ctx, c.State, nil) })
	run := func(args ...string) result { return c.AminateEnv(t, []string{"AMINATOR_STORE_FS=none"}, args...) }
	b := mustOK(t, run("images", "import", "--role", "base", "fullbase", testutil.DebianBase(t)))
	v := mustOK(t, run("volumes", "create", b)) // how much a bake's volume takes
	volBytes := allocatedBytes(t, filepath.Join(c.State, "data", "volumes", v+".img"))
	mustOK(t, run("volumes", "rm", v))

	const pkg = 96 << 20 // incompressible
	blob := make([]byte, pkg)
	rand.Read(blob)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-big", Version: "1.0", Files: map[string]string{"/opt/big": string(blob)}})
	// Room for the volume, the package and 64 MiB (the image's 32 MiB
	// journal, dpkg's files), not for 96 MiB of chunks besides.
	fill(t, filepath.Join(c.State, "filler"), volBytes+pkg+64<<20)
	store := filepath.Join(c.State, "data", "store")
	before, snaps := storeFiles(t, store), snapshotCount(t, run)

	r := run("-B", b, "-s", "full", deb)
	if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "no space left on device") {
		t.Fatalf("a bake on a full disk: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("the bake failed:\n%s", lastLines(r.Stderr, 3))
	if !strings.Contains(r.Stderr, "store snapshot") {
		t.Errorf("the bake did not fail at its snapshot (the test's sizes are off):\n%s", r.Stderr)
	}
	if after := storeFiles(t, store); after != before {
		t.Errorf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := snapshotCount(t, run); n != snaps {
		t.Errorf("%d snapshots after the failed bake, %d before", n, snaps)
	}
	if out := mustOK(t, run("volumes", "list")); strings.Contains(out, "vol-") {
		t.Errorf("a volume was left:\n%s", out)
	}
	os.Remove(filepath.Join(c.State, "filler"))
	if out := mustOK(t, run("fsck")); !strings.HasSuffix(out, "ok") {
		t.Errorf("fsck after the failed bake:\n%s", out)
	}
	mustOK(t, run("images", "rm", b))
}

func allocatedBytes(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// fill allocates a file that leaves free bytes free on its filesystem.
func fill(t *testing.T, path string, free int64) {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	avail := int64(fs.Bavail) * fs.Bsize
	if avail <= free {
		t.Fatalf("only %d bytes free, want more than %d", avail, free)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, avail-free); err != nil {
		t.Fatal(err)
	}
}

// storeFiles lists the store's files (but its gc lock) and their sizes.
func storeFiles(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Name() != "gc.lock" {
			b.WriteString(strings.TrimPrefix(p, dir) + " " + fi.Mode().String() + "\n")
		}
		return err
	})
	return b.String()
}

func snapshotCount(t *testing.T, run func(...string) result) int {
	t.Helper()
	var ss []plugin.Snapshot
	if err := json.Unmarshal([]byte(mustOK(t, run("snapshots", "list", "--output", "json"))), &ss); err != nil {
		t.Fatal(err)
	}
	return len(ss)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
