package snapstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"github.com/aminator-go/aminator/internal/testutil"
)

const dcs = diskdigest.ChunkSize

// digestVolume writes a sparse volume of 9 chunks of 512 KiB and 1,000
// bytes: random data in chunk 1, the same text in chunks 2 and 3 (one
// compressed chunk, stored once), 4 KiB of random data inside chunk 5,
// random data from the middle of chunk 8 into the short last chunk; holes
// elsewhere.
func digestVolume(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(9*dcs + 1000)
	random := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	text := bytes.Repeat([]byte("aminator "), dcs/9+1)[:dcs]
	for _, w := range []struct {
		b   []byte
		off int64
	}{{random(dcs), dcs}, {text, 2 * dcs}, {text, 3 * dcs}, {random(4096), 5*dcs + 8192}, {random(dcs/2 + 1000), 8*dcs + dcs/2}} {
		if _, err := f.WriteAt(w.b, w.off); err != nil {
			t.Fatal(err)
		}
	}
}

// flipByte changes one byte of a file in place and returns the undo.
func flipByte(t *testing.T, path string, off int64) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{b[0] ^ 0x40}, off)
	return func() {
		g, _ := os.OpenFile(path, os.O_RDWR, 0)
		g.WriteAt(b[:], off)
		g.Close()
	}
}

// DiskDigest (the manifest) and ReadDiskDigest (the chunks) agree with
// diskdigest.OfFile of the snapshot's source and of its restored file, on
// a plain store, a reflink store (xfs: raw chunks share the volume's
// blocks) and a store of 64 KiB chunks (whose manifest cannot give it);
// a flipped byte in any stored chunk fails ReadDiskDigest.
func TestDiskDigest(t *testing.T) {
	for _, c := range []struct {
		name  string
		dir   func(*testing.T) string
		chunk int
	}{
		{"plain", func(t *testing.T) string { return t.TempDir() }, dcs},
		{"xfs", func(t *testing.T) string { return xfsDir(t) }, dcs},
		{"64KiB-chunks", func(t *testing.T) string { return t.TempDir() }, 64 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := c.dir(t)
			s, err := NewChunks(filepath.Join(dir, "store"), ChunkOptions{ChunkSize: c.chunk, Compress: true})
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(dir, "vol")
			digestVolume(t, src)
			if _, err := s.Put(ctx, "snap-a", "", src); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "restored")
			if err := s.Restore(ctx, "snap-a", out); err != nil {
				t.Fatal(err)
			}
			want := testutil.DiskDigest(t, src, -1)
			if got := testutil.DiskDigest(t, out, -1); got != want {
				t.Fatalf("the restored file's digest %s, the source's %s", got, want)
			}
			got, err := s.DiskDigest("snap-a")
			if c.chunk == dcs && (err != nil || got != want) {
				t.Errorf("DiskDigest = %s, %v; want %s", got, err, want)
			} else if c.chunk != dcs && !errors.Is(err, ErrDigestNeedsRead) {
				t.Errorf("DiskDigest in a store of %d-byte chunks: %s, %v; want ErrDigestNeedsRead", c.chunk, got, err)
			}
			if got, err := s.ReadDiskDigest(ctx, "snap-a"); err != nil || got != want {
				t.Errorf("ReadDiskDigest = %s, %v; want %s", got, err, want)
			}
			m, _ := s.LoadManifest("snap-a")
			for _, off := range []int64{dcs + 7, 2 * dcs, 8*dcs + dcs - 1} { // random, text (compressed), the end
				h := m.Chunks[off/int64(m.ChunkSize)]
				p := s.chunkPath(h)
				st, _ := os.Stat(p)
				undo := flipByte(t, p, st.Size()-1)
				if got, err := s.ReadDiskDigest(ctx, "snap-a"); !errors.Is(err, ErrCorrupt) {
					t.Errorf("ReadDiskDigest with a byte of chunk %s flipped: %s, %v; want ErrCorrupt", h, got, err)
				}
				undo()
			}
			if got, err := s.ReadDiskDigest(ctx, "snap-a"); err != nil || got != want {
				t.Errorf("ReadDiskDigest with the bytes put back = %s, %v; want %s", got, err, want)
			}
		})
	}
}

// An all-zero snapshot (no chunk stored) has the digest of its zeros; a
// missing snapshot is not found; a cancelled read stops.
func TestDiskDigestEdges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewChunks(filepath.Join(dir, "store"), ChunkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "zeros")
	os.WriteFile(src, nil, 0o600)
	os.Truncate(src, 3*dcs+5)
	if _, err := s.Put(ctx, "snap-z", "", src); err != nil {
		t.Fatal(err)
	}
	want := testutil.DiskDigest(t, src, -1)
	if got, err := s.DiskDigest("snap-z"); err != nil || got != want {
		t.Errorf("DiskDigest of zeros = %s, %v; want %s", got, err, want)
	}
	if got, err := s.ReadDiskDigest(ctx, "snap-z"); err != nil || got != want {
		t.Errorf("ReadDiskDigest of zeros = %s, %v; want %s", got, err, want)
	}
	if _, err := s.DiskDigest("snap-missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("DiskDigest of a missing snapshot: %v", err)
	}
	if _, err := s.ReadDiskDigest(ctx, "snap-missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDiskDigest of a missing snapshot: %v", err)
	}
	digestVolume(t, src)
	if _, err := s.Put(ctx, "snap-d", "", src); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.ReadDiskDigest(cancelled, "snap-d"); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadDiskDigest cancelled: %v", err)
	}
}
