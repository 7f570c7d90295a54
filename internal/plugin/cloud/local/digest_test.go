package local

import (
	"context"
	"os"
	"testing"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
)

// A store of other chunks than the digest's cannot compose the digest
// from its manifest: DiskDigest reads the snapshot instead, and agrees
// with ReadDiskDigest and with the imported file's digest.
func TestDiskDigestOtherChunkSize(t *testing.T) {
	ctx := context.Background()
	c, err := Open(Options{StateDir: t.TempDir(), ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw := rawFile(t, 3<<20+4096)
	im, err := c.Import(ctx, raw, ImportOptions{Name: "digest", Architecture: "x86_64", VirtualizationType: "hvm"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	want, err := diskdigest.OfFile(ctx, f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	snap := im.Root().SnapshotID
	if got, err := c.DiskDigest(ctx, snap); err != nil || got != want {
		t.Errorf("DiskDigest = %s, %v; want %s", got, err, want)
	}
	if got, err := c.ReadDiskDigest(ctx, snap); err != nil || got != want {
		t.Errorf("ReadDiskDigest = %s, %v; want %s", got, err, want)
	}
}
