package snapstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

const cs = 64 << 10 // small chunks keep the tests quick

func newStore(t *testing.T, dir string) *Chunks {
	t.Helper()
	c, err := NewChunks(dir, ChunkOptions{ChunkSize: cs, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// volume writes a sparse file: random data at the given chunk indices,
// compressible text at others, holes elsewhere.
func volume(t *testing.T, path string, chunks int, random, text []int) []byte {
	t.Helper()
	img := make([]byte, chunks*cs)
	for _, i := range random {
		rand.Read(img[i*cs : (i+1)*cs])
	}
	for _, i := range text {
		copy(img[i*cs:(i+1)*cs], bytes.Repeat([]byte("aminator "), cs/9+1))
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(len(img)))
	for i := 0; i < chunks; i++ {
		if !allZero(img[i*cs : (i+1)*cs]) {
			f.WriteAt(img[i*cs:(i+1)*cs], int64(i*cs))
		}
	}
	f.Close()
	return img
}

func TestRoundTripDedupAndZeros(t *testing.T) {
	dir := t.TempDir()
	c := newStore(t, filepath.Join(dir, "store"))
	ctx := context.Background()
	src := filepath.Join(dir, "vol")
	img := volume(t, src, 64, []int{1, 2, 40}, []int{10, 11})
	st, err := c.Put(ctx, "snap-a", "", src)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(img)) || st.Data != 5*cs {
		t.Errorf("stats %+v", st)
	}
	// Random chunks are stored raw, text chunks compressed (and the two equal text chunks once).
	if st.Added > 3*cs+1000 || st.Added < 3*cs {
		t.Errorf("added %d bytes, want a little over %d", st.Added, 3*cs)
	}
	out := filepath.Join(dir, "restored")
	if err := c.Restore(ctx, "snap-a", out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, img) {
		t.Fatal("restored volume differs")
	}
	// The same data again adds nothing.
	st2, err := c.Put(ctx, "snap-b", "snap-a", src)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Added != 0 {
		t.Errorf("identical snapshot added %d bytes", st2.Added)
	}
	m, _ := c.LoadManifest("snap-b")
	if m.Parent != "snap-a" || m.Chunks[0] != "" || m.Chunks[1] == "" || m.Chunks[10] != m.Chunks[11] {
		t.Errorf("manifest %+v", m.Chunks[:12])
	}
}

// A crash after the chunks and before the manifest leaves no snapshot, and
// gc reclaims the orphaned chunks; gc never frees a chunk a live snapshot uses.
func TestCrashBeforeManifestAndGC(t *testing.T) {
	dir := t.TempDir()
	c := newStore(t, filepath.Join(dir, "store"))
	ctx := context.Background()
	live := filepath.Join(dir, "live")
	liveImg := volume(t, live, 16, []int{0, 1}, nil)
	if _, err := c.Put(ctx, "snap-live", "", live); err != nil {
		t.Fatal(err)
	}
	crash := filepath.Join(dir, "crash")
	volume(t, crash, 16, []int{0, 5, 6}, nil)
	copyChunk(t, live, crash, 1) // shares chunk 1 with the live snapshot
	c.beforeManifest = func() error { return errors.New("simulated crash") }
	if _, err := c.Put(ctx, "snap-crash", "", crash); err == nil {
		t.Fatal("the crash hook did not fire")
	}
	c.beforeManifest = nil
	ids, _ := c.Snapshots()
	if len(ids) != 1 || ids[0] != "snap-live" {
		t.Errorf("visible snapshots after the crash: %v", ids)
	}
	if err := c.Restore(ctx, "snap-crash", filepath.Join(dir, "x")); err == nil {
		t.Error("restored a snapshot that never committed")
	}
	st := gc(t, c)
	if n := len(st.IDs(gcreport.Chunk)); n != 3 || st.LiveChunks != 2 {
		t.Errorf("gc freed %d chunks and kept %d, want 3 orphans freed and 2 live chunks kept", n, st.LiveChunks)
	}
	out := filepath.Join(dir, "out")
	if err := c.Restore(ctx, "snap-live", out); err != nil {
		t.Fatalf("gc freed a live chunk: %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, liveImg) {
		t.Error("live snapshot changed by gc")
	}
	c.Delete(ctx, "snap-live")
	if n := len(gc(t, c).IDs(gcreport.Chunk)); n != 2 {
		t.Errorf("after deleting the last snapshot gc freed %d chunks, want 2", n)
	}
}

func copyChunk(t *testing.T, from, to string, i int) {
	b, _ := os.ReadFile(from)
	f, _ := os.OpenFile(to, os.O_WRONLY, 0)
	f.WriteAt(b[i*cs:(i+1)*cs], int64(i*cs))
	f.Close()
}

// A corrupted chunk is caught by a read and by fsck, which names the
// snapshots it breaks.
func TestCorruptChunk(t *testing.T) {
	dir := t.TempDir()
	c := newStore(t, filepath.Join(dir, "store"))
	ctx := context.Background()
	src := filepath.Join(dir, "vol")
	volume(t, src, 8, []int{2, 3}, nil)
	if _, err := c.Put(ctx, "snap-1", "", src); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	volume(t, other, 8, []int{4}, nil)
	if _, err := c.Put(ctx, "snap-2", "", other); err != nil {
		t.Fatal(err)
	}
	m, _ := c.LoadManifest("snap-1")
	p := c.chunkPath(m.Chunks[3])
	b, _ := os.ReadFile(p)
	b[100] ^= 0xff
	os.WriteFile(p, b, 0o600)
	err := c.Restore(ctx, "snap-1", filepath.Join(dir, "r"))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), m.Chunks[3]) {
		t.Errorf("read of a corrupt chunk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "r")); err == nil {
		t.Error("a failed restore left its output")
	}
	r, err := c.Fsck(ctx, FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bad) != 1 || len(r.Broken) != 1 || r.Broken["snap-1"][0] != m.Chunks[3] || r.Chunks != 3 {
		t.Errorf("fsck %+v", r)
	}
}

// xfsDir mounts a small xfs with reflinks for the test and returns it.
func xfsDir(t testing.TB) string { return reflinkDir(t, "xfs") }

// reflinkDir mounts a small filesystem with reflinks (xfs or btrfs) for
// the test and returns it; it skips the test without the mkfs.
func reflinkDir(t testing.TB, fstype string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a filesystem")
	}
	mkfs := map[string][]string{"xfs": {"-q", "-m", "reflink=1"}, "btrfs": {"-q", "-f"}}[fstype]
	if _, err := exec.LookPath("mkfs." + fstype); err != nil {
		t.Skip("no mkfs." + fstype)
	}
	dir := t.TempDir()
	fsImg := filepath.Join(dir, "fs.img")
	f, _ := os.Create(fsImg)
	f.Truncate(512 << 20)
	f.Close()
	if b, err := exec.Command("mkfs."+fstype, append(mkfs, fsImg)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.%s: %v %s", fstype, err, b)
	}
	ctx := context.Background()
	d, err := loop.Attach(ctx, fsImg, loop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Detach() })
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := mount.Mount(d.Path, mnt, fstype, 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mount.Unmount(ctx, mnt, nil) })
	return mnt
}

// sharesBlocks reports whether every block of the chunk file's data is
// shared with another file (a clone, not a copy).
func sharesBlocks(t *testing.T, c *Chunks, h string) bool {
	t.Helper()
	f, err := os.Open(c.chunkPath(h))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	exts, err := fileExtents(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var shared int64
	for _, e := range exts {
		if e.flags&fiemapExtentShared != 0 && e.logical >= rawOffset {
			shared += int64(e.length)
		}
	}
	return shared == st.Size()-rawOffset
}

// On a reflink filesystem a volume cloned from a snapshot is snapshotted
// by reading only the chunks a bake wrote; the rest comes from the parent,
// and the new raw chunk is a clone of the volume's blocks.
func TestIncrementalWithReflinks(t *testing.T) {
	mnt := xfsDir(t)
	ctx := context.Background()
	c := newStore(t, filepath.Join(mnt, "store"))
	if !c.Reflink() {
		t.Fatal("xfs with reflink=1 does not clone")
	}
	base := filepath.Join(mnt, "base")
	volume(t, base, 256, seq(0, 200), nil)
	if _, err := c.Put(ctx, "snap-base", "", base); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(mnt, "vol")
	if err := c.Restore(ctx, "snap-base", vol); err != nil {
		t.Fatal(err)
	}
	// A "bake" writes two chunks.
	w, _ := os.OpenFile(vol, os.O_WRONLY, 0)
	junk := make([]byte, cs)
	rand.Read(junk)
	w.WriteAt(junk, 7*cs)
	w.WriteAt(junk, 230*cs)
	w.Close()
	st, err := c.Put(ctx, "snap-baked", "snap-base", vol)
	if err != nil {
		t.Fatal(err)
	}
	if st.Data != 2*cs || st.Added != cs+rawOffset {
		t.Errorf("incremental snapshot read %d data bytes and added %d; want 2 chunks read, 1 stored", st.Data, st.Added)
	}
	m, _ := c.LoadManifest("snap-baked")
	if !sharesBlocks(t, c, m.Chunks[7]) {
		t.Error("the new chunk is a copy, not a clone of the volume's blocks")
	}
	want, _ := os.ReadFile(vol)
	out := filepath.Join(t.TempDir(), "out") // not on xfs: a real chunk restore
	c.reflink = false
	if err := c.Restore(ctx, "snap-baked", out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Error("incremental snapshot restores different data")
	}
}

// A file from another filesystem (an imported image) put into a reflink
// store leaves a clone for volumes, assembled from its chunks, so the
// first volume made from it is a clone too; its raw chunks are aligned,
// and fsck reads them.
func TestImportOntoReflinkStore(t *testing.T) {
	mnt := xfsDir(t)
	ctx := context.Background()
	c := newStore(t, filepath.Join(mnt, "store"))
	src := filepath.Join(t.TempDir(), "image") // not on xfs
	img := volume(t, src, 64, []int{1, 2, 3, 40}, []int{10, 11})
	if _, err := c.Put(ctx, "snap-imported", "", src); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(c.cachePath("snap-imported")); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("no clone of the imported image, or a different one: %v", err)
	}
	m, _ := c.LoadManifest("snap-imported")
	if !sharesBlocks(t, c, m.Chunks[40]) {
		t.Error("the clone does not share the raw chunk's blocks")
	}
	vol := filepath.Join(mnt, "vol")
	if err := c.Restore(ctx, "snap-imported", vol); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(vol); !bytes.Equal(got, img) {
		t.Fatal("the volume differs from the image")
	}
	r, err := c.Fsck(ctx, FsckOptions{})
	if err != nil || len(r.Bad) > 0 {
		t.Fatalf("fsck: %v %v", err, r)
	}
	p := c.chunkPath(m.Chunks[2])
	b, _ := os.ReadFile(p)
	if b[0] != formatRawAligned {
		t.Fatalf("a raw chunk on a reflink store has format %d", b[0])
	}
	b[rawOffset+100] ^= 1
	os.WriteFile(p, b, 0o600)
	if r, _ := c.Fsck(ctx, FsckOptions{}); len(r.Bad) != 1 {
		t.Errorf("fsck after damaging an aligned chunk: %v", r.Bad)
	}
}

func seq(a, b int) []int {
	var out []int
	for i := a; i < b; i++ {
		out = append(out, i)
	}
	return out
}
