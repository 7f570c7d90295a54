package sparse

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopyKeepsDataAndHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	f, _ := os.Create(src)
	f.Truncate(64 << 20)
	f.WriteAt(bytes.Repeat([]byte("a"), 1<<20), 5<<20)
	f.WriteAt([]byte("end"), 64<<20-3)
	f.Close()
	dst := filepath.Join(dir, "dst")
	n, err := CopyFile(context.Background(), dst, src)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs")
	}
	if n > 4<<20 {
		t.Errorf("copied %d data bytes; holes were not skipped", n)
	}
	var st1 = mustStat(t, dst)
	if st1 > 8<<20 {
		t.Errorf("destination uses %d bytes on disk; not sparse", st1)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".dst.tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestCopyCancelled(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("data"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CopyFile(ctx, filepath.Join(dir, "dst"), src); err == nil {
		t.Fatal("cancelled copy succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

func mustStat(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
