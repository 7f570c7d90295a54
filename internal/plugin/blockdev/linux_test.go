package blockdev

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/plugin"
)

type fakeCloud struct {
	attached []string
}

func (f fakeCloud) AttachedDevices(context.Context) ([]string, error) { return f.attached, nil }

func blockNode(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 250))); err != nil {
		t.Skipf("mknod (needs root): %v", err)
	}
}

func TestAllocateSkipsTakenNames(t *testing.T) {
	root := t.TempDir()
	dev := filepath.Join(root, "dev")
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(dev, "xvdf"), nil, 0o600) // exists on this host
	l := &Linux{Letters: "fghi", LockDir: filepath.Join(root, "lock"), Dev: dev, Sys: filepath.Join(root, "sys"),
		Attached: fakeCloud{attached: []string{"/dev/sda1", "/dev/sdg"}}}
	ctx := context.Background()
	a, err := l.Allocate(ctx, "")
	if err != nil || a.Name != "/dev/sdh" {
		t.Fatalf("first pick %q %v, want /dev/sdh (sdf exists as xvdf, sdg is attached)", a.Name, err)
	}
	b, err := l.Allocate(ctx, "")
	if err != nil || b.Name != "/dev/sdi" {
		t.Fatalf("second pick %q %v, want /dev/sdi (sdh is reserved)", b.Name, err)
	}
	if _, err := l.Allocate(ctx, ""); err == nil || !strings.Contains(err.Error(), "no free device") {
		t.Errorf("all taken: %v", err)
	}
	if _, err := l.Allocate(ctx, "/dev/sdh"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a named device in use: %v", err)
	}
	a.Release()
	if c, err := l.Allocate(ctx, "/dev/sdh"); err != nil || c.Name != "/dev/sdh" {
		t.Errorf("named after release: %q %v", c.Name, err)
	}
}

// On a Nitro host /dev/sdf may be a symlink to another volume; the volume
// is found by its id in the NVMe controller's serial.
func TestLocateNVMeBySerial(t *testing.T) {
	root := t.TempDir()
	dev, sys := filepath.Join(root, "dev"), filepath.Join(root, "sys")
	for n, serial := range map[string]string{"nvme0": "vol0aaaaaaaaaaaaaaaa", "nvme1": "vol0123456789abcdef0"} {
		d := filepath.Join(sys, "class", "nvme", n)
		os.MkdirAll(filepath.Join(d, n+"n1"), 0o755)
		os.WriteFile(filepath.Join(d, "serial"), []byte(serial+"  \n"), 0o644)
		blockNode(t, filepath.Join(dev, n+"n1"))
	}
	os.Symlink("nvme0n1", filepath.Join(dev, "sdf")) // a stale udev link to the wrong disk
	l := &Linux{Dev: dev, Sys: sys, Timeout: time.Second}
	p, err := l.Locate(context.Background(), plugin.Attachment{VolumeID: "vol-0123456789abcdef0", Device: "/dev/sdf"})
	if err != nil || p != filepath.Join(dev, "nvme1n1") {
		t.Errorf("located %q %v, want nvme1n1", p, err)
	}
	_, err = l.Locate(context.Background(), plugin.Attachment{VolumeID: "vol-0fffffffffffffff0", Device: "/dev/sdg"})
	if err == nil || !strings.Contains(err.Error(), "no local device appeared") {
		t.Errorf("missing volume: %v", err)
	}
}

func TestLocateXen(t *testing.T) {
	root := t.TempDir()
	dev := filepath.Join(root, "dev")
	blockNode(t, filepath.Join(dev, "xvdh"))
	l := &Linux{Dev: dev, Sys: filepath.Join(root, "sys"), Timeout: time.Second}
	p, err := l.Locate(context.Background(), plugin.Attachment{VolumeID: "vol-1", Device: "/dev/sdh"})
	if err != nil || p != filepath.Join(dev, "xvdh") {
		t.Errorf("located %q %v", p, err)
	}
}
