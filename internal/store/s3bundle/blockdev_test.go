package s3bundle

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/testutil"
)

// A block device (the EC2 finalizer bundles the attached volume) has no
// holes to ask for: its zero blocks are found by reading, and the bundle
// restores to the same bytes.
func TestRoundTripBlockDevice(t *testing.T) {
	testutil.RequireRoot(t)
	disk := sparseDisk(t, t.TempDir(), 16<<20, 10)
	dev, err := loop.Attach(context.Background(), disk, loop.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Detach()
	o := testOptions(t)
	o.Name = "disk.img"
	dir := t.TempDir()
	res, err := Bundle(context.Background(), dev.Path, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.DataBytes >= 1<<20 {
		t.Fatalf("read %d bytes of data from a disk with ~160 KiB", res.DataBytes)
	}
	doc, _ := os.ReadFile(res.ManifestPath)
	out, err := os.Create(filepath.Join(t.TempDir(), "out.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := Unbundle(context.Background(), doc, o.Key, DirOpener(dir), out); err != nil {
		t.Fatal(err)
	}
	sameFile(t, disk, out.Name())
}
