package snapstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/sys/mount"
)

// A clone whose bytes were changed fails fsck, which names it and drops
// it; the next volume is made from the chunks, with the right bytes, and
// a clone made again. A clone whose record does not match its manifest is
// never used, neither for a volume nor as a parent.
func TestBadCloneDroppedNeverUsed(t *testing.T) {
	mnt := xfsDir(t)
	c := newStore(t, filepath.Join(mnt, "store"))
	src := filepath.Join(mnt, "src")
	img := volume(t, src, 32, seq(0, 20), nil)
	put(t, c, "snap-1", "", src)
	// A clone without a record (as from before records) is recorded once
	// fsck has verified it.
	unix.Removexattr(c.cachePath("snap-1"), cloneRecord)
	if r := fsck(t, c, FsckOptions{}); r.Clones != 1 || len(r.BadClones) != 0 {
		t.Fatalf("fsck of a good clone: %+v", r)
	}
	if f := c.verifiedClone("snap-1", manifestSum(t, c, "snap-1")); f == nil {
		t.Error("fsck did not record the good clone")
	} else {
		f.Close()
	}
	writeChunk(t, c.cachePath("snap-1"), 7, randomChunk()) // flip the clone's bytes
	r := fsck(t, c, FsckOptions{})
	if why := r.BadClones["snap-1"]; !strings.Contains(why, "chunk 7") {
		t.Errorf("fsck did not name the bad clone: %+v", r)
	}
	if _, err := os.Stat(c.cachePath("snap-1")); err == nil {
		t.Error("the bad clone was kept")
	}
	restoreEquals(t, c, "snap-1", filepath.Join(mnt, "vol1"), img)
	if f := c.verifiedClone("snap-1", manifestSum(t, c, "snap-1")); f == nil {
		t.Error("no verified clone was made again from the chunks")
	} else {
		f.Close()
	}

	// A clone of other bytes with no (or another) record is not used.
	other := filepath.Join(mnt, "other")
	volume(t, other, 32, seq(0, 32), nil)
	if err := Clone(other, c.cachePath("snap-1")); err != nil {
		t.Fatal(err)
	}
	unix.Setxattr(c.cachePath("snap-1"), cloneRecord, []byte("0123"), 0)
	restoreEquals(t, c, "snap-1", filepath.Join(mnt, "vol2"), img)
	Clone(other, c.cachePath("snap-1"))
	if st := put(t, c, "snap-2", "snap-1", filepath.Join(mnt, "vol2")); st.Data != 20*cs {
		t.Errorf("a snapshot whose parent's clone is unverified read %d bytes, want all %d", st.Data, 20*cs)
	}
}

// fsck --repair quarantines bad chunks, rebuilds them from a verified
// clone or a volume holding the same data, and leaves broken (named) what
// it cannot rebuild.
func TestRepair(t *testing.T) {
	mnt := xfsDir(t)
	c := newStore(t, filepath.Join(mnt, "store"))
	a, b := filepath.Join(mnt, "a"), filepath.Join(mnt, "b")
	imgA := volume(t, a, 16, seq(0, 8), nil)
	volume(t, b, 16, seq(4, 12), nil)
	put(t, c, "snap-a", "", a)
	put(t, c, "snap-b", "", b)
	ma, _ := c.LoadManifest("snap-a")
	mb, _ := c.LoadManifest("snap-b")
	damage(t, c, ma.Chunks[1])
	damage(t, c, mb.Chunks[10])
	os.Remove(c.cachePath("snap-b")) // b's chunk has no clone to come from

	r := fsck(t, c, FsckOptions{Repair: true})
	if len(r.Quarantined) != 2 || r.Repaired[ma.Chunks[1]] != c.cachePath("snap-a") {
		t.Errorf("repair: %+v", r)
	}
	if _, bad := r.Bad[mb.Chunks[10]]; !bad || len(r.Broken) != 1 || r.Broken["snap-b"][0] != mb.Chunks[10] {
		t.Errorf("snap-b is not reported broken: %+v", r)
	}
	for _, h := range []string{ma.Chunks[1], mb.Chunks[10]} {
		if _, err := os.Stat(filepath.Join(c.dir, "quarantine", h)); err != nil {
			t.Errorf("bad chunk %s not kept in quarantine: %v", h, err)
		}
	}
	restoreFromChunks(t, c, "snap-a", imgA)

	// A volume holding snap-b's data rebuilds the rest.
	r = fsck(t, c, FsckOptions{Repair: true, Sources: []Source{{Path: a, Snapshot: "snap-b"}, {Path: b, Snapshot: "snap-b"}}})
	if r.Repaired[mb.Chunks[10]] != b || len(r.Bad) != 0 || len(r.Broken) != 0 {
		t.Errorf("repair from a volume: %+v", r)
	}
	if r := fsck(t, c, FsckOptions{}); len(r.Bad) != 0 || len(r.Broken) != 0 {
		t.Errorf("after repair: %+v", r)
	}
}

// Storing the same data again heals a bad chunk (quarantined, then stored
// again) and a missing (quarantined) one, also one a snapshot would take
// unread from its parent's clone (xfs). A bad chunk that is still in place
// is taken unread there: fsck finds it and --repair rebuilds it from the
// clone (TestRepair).
func TestStoringAgainHeals(t *testing.T) {
	for _, store := range []string{"plain", "xfs"} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			if store == "xfs" {
				dir = xfsDir(t)
			}
			c := newStore(t, filepath.Join(dir, "store"))
			src := filepath.Join(dir, "src")
			img := volume(t, src, 16, seq(0, 8), nil)
			put(t, c, "snap-1", "", src)
			m, _ := c.LoadManifest("snap-1")
			bad := 0
			if store == "plain" {
				damage(t, c, m.Chunks[2])
				bad++
			}
			os.Rename(c.chunkPath(m.Chunks[5]), filepath.Join(dir, "gone"))
			if r := fsck(t, c, FsckOptions{}); len(r.Broken["snap-1"]) != bad+1 {
				t.Fatalf("fsck: %+v", r)
			}
			vol := filepath.Join(dir, "vol")
			if store == "xfs" { // a volume of snap-1: its chunks are the parent's blocks
				restoreEquals(t, c, "snap-1", vol, img)
			} else {
				os.WriteFile(vol, img, 0o600)
			}
			if st := put(t, c, "snap-2", "snap-1", vol); store == "xfs" && st.Data != cs {
				t.Errorf("read %d bytes, want only the missing chunk", st.Data)
			}
			if r := fsck(t, c, FsckOptions{}); len(r.Bad) != 0 || len(r.Broken) != 0 {
				t.Errorf("storing the same data again did not heal the store: %+v", r)
			}
			if _, err := os.Stat(filepath.Join(c.dir, "quarantine", m.Chunks[2])); bad > 0 && err != nil {
				t.Errorf("the bad chunk was not quarantined: %v", err)
			}
			restoreFromChunks(t, c, "snap-1", img)
		})
	}
}

// A snapshot that fills the store's filesystem fails with that reason and
// leaves the store as it was: no manifest, no chunk, no temporary file.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	ctx := context.Background()
	mnt := t.TempDir()
	if err := mount.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mount.Unmount(ctx, mnt, nil) })
	c := newStore(t, filepath.Join(mnt, "store"))
	small := filepath.Join(t.TempDir(), "small")
	volume(t, small, 4, []int{0}, nil)
	put(t, c, "snap-small", "", small)
	before := tree(t, c.dir)
	src := filepath.Join(t.TempDir(), "big")
	volume(t, src, 64, seq(0, 32), nil)
	_, err := c.Put(ctx, "snap-big", "snap-small", src)
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("a snapshot on a full store: %v", err)
	}
	if after := tree(t, c.dir); after != before {
		t.Errorf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// tree lists the files under dir (but the gc lock) with their sizes.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Name() != "gc.lock" {
			b.WriteString(p + " " + fi.Mode().String() + "\n")
		}
		return err
	})
	return b.String()
}

func fsck(t *testing.T, c *Chunks, o FsckOptions) *FsckReport {
	t.Helper()
	r, err := c.Fsck(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// damage flips a byte of a chunk's data.
func damage(t *testing.T, c *Chunks, h string) {
	t.Helper()
	b, err := os.ReadFile(c.chunkPath(h))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-100] ^= 0xff
	if err := os.WriteFile(c.chunkPath(h), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func manifestSum(t *testing.T, c *Chunks, id string) string {
	t.Helper()
	_, sum, err := c.loadManifest(id)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func restoreEquals(t *testing.T, c *Chunks, id, dst string, want []byte) {
	t.Helper()
	if err := c.Restore(context.Background(), id, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
		t.Errorf("a volume of %s has other bytes than the snapshot", id)
	}
}
