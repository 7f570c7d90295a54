package mount

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/sys/loop"
)

// A mount held by a process stays busy; the error names the process.
func TestUnmountBusyNamesHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "m")
	os.MkdirAll(dir, 0o755)
	if err := Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(context.Background(), dir, nil) })
	cmd := exec.Command("sleep", "30")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := Unmount(ctx, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "(sleep)") || !strings.Contains(err.Error(), "cwd") {
		t.Fatalf("error does not name the holder: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := Unmount(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if ms, _ := Under(dir); len(ms) != 0 {
		t.Errorf("still mounted: %v", ms)
	}
}

func TestDetectFS(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ mkfs, want string }{{"mkfs.ext4", "ext4"}, {"mkfs.xfs", "xfs"}} {
		if _, err := exec.LookPath(tc.mkfs); err != nil {
			continue
		}
		img := filepath.Join(dir, tc.want)
		f, _ := os.Create(img)
		f.Truncate(300 << 20)
		f.Close()
		if b, err := exec.Command(tc.mkfs, "-q", img).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", tc.mkfs, err, b)
		}
		if got, err := DetectFS(img); err != nil || got != tc.want {
			t.Errorf("DetectFS(%s) = %q, %v", tc.want, got, err)
		}
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, make([]byte, 1<<20), 0o644)
	if _, err := DetectFS(empty); err == nil || !strings.Contains(err.Error(), "--partition") {
		t.Errorf("no filesystem: %v", err)
	}
}

// A filesystem unmounted here but still mounted in a mount namespace that
// a process copied is not shut down: WaitUnused waits for that process,
// and says so when it does not go.
func TestWaitUnusedWaitsForAnotherNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("no mkfs.ext4")
	}
	img := filepath.Join(t.TempDir(), "fs.img")
	os.WriteFile(img, nil, 0o600)
	os.Truncate(img, 64<<20)
	if b, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, b)
	}
	ctx := context.Background()
	d, err := loop.Attach(ctx, img, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Detach() })
	dir := filepath.Join(t.TempDir(), "m")
	os.MkdirAll(dir, 0o755)
	if err := Mount(d.Path, dir, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(ctx, dir, nil) })
	// A copy of every mount, this one included, for as long as it sleeps.
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", "echo ready; exec sleep 1")
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Read(make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := WaitUnused(ctx, d.Path, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "another mount namespace") {
		t.Errorf("a filesystem still mounted elsewhere: %v", err)
	}
	holder.Wait()
	if err := WaitUnused(ctx, d.Path, 10*time.Second); err != nil {
		t.Errorf("after the namespace's last process ended: %v", err)
	}
}
