package snapstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// A chunk whose extents are shared, but not with the parent's clone at the
// same offset, is read and stored, never taken from the parent: blocks
// cloned into the volume from a third file, and a volume reused after an
// earlier snapshot (whose clone shares the volume's changed blocks). The
// manifest is proven by a restore from the chunks alone.
func TestExactChangeDetection(t *testing.T) {
	for _, fstype := range []string{"xfs", "btrfs"} {
		t.Run(fstype, func(t *testing.T) {
			mnt := reflinkDir(t, fstype)
			ctx := context.Background()
			c := newStore(t, filepath.Join(mnt, "store"))
			if !c.Reflink() {
				t.Fatalf("%s does not clone", fstype)
			}
			base := filepath.Join(mnt, "base")
			volume(t, base, 64, seq(0, 48), nil)
			put(t, c, "snap-base", "", base)
			vol := filepath.Join(mnt, "vol")
			if err := c.Restore(ctx, "snap-base", vol); err != nil {
				t.Fatal(err)
			}
			// The volume is snapshotted once (snap-a: its clone now shares
			// chunk 3's new blocks), then reused.
			writeChunk(t, vol, 3, randomChunk())
			put(t, c, "snap-a", "snap-base", vol)
			// Chunk 5 gets a third file's blocks: shared, but new data.
			third := filepath.Join(mnt, "third")
			os.WriteFile(third, randomChunk(), 0o600)
			cloneRange(t, third, vol, 5)
			writeChunk(t, vol, 9, randomChunk()) // plainly changed
			st := put(t, c, "snap-b", "snap-base", vol)
			if st.Data != 3*cs {
				t.Errorf("read %d bytes, want the 3 changed chunks", st.Data)
			}
			want, _ := os.ReadFile(vol)
			m, _ := c.LoadManifest("snap-b")
			pm, _ := c.LoadManifest("snap-base")
			for _, i := range []int{3, 5, 9} {
				if m.Chunks[i] == pm.Chunks[i] {
					t.Errorf("chunk %d: the parent's chunk named for changed data", i)
				}
			}
			if m.Chunks[4] != pm.Chunks[4] {
				t.Error("an unchanged chunk was not taken from the parent")
			}
			restoreFromChunks(t, c, "snap-b", want)
		})
	}
}

func put(t *testing.T, c *Chunks, id, parent, src string) Stats {
	t.Helper()
	st, err := c.Put(context.Background(), id, parent, src)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func randomChunk() []byte {
	b := make([]byte, cs)
	rand.Read(b)
	return b
}

func writeChunk(t *testing.T, path string, i int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(i)*cs); err != nil {
		t.Fatal(err)
	}
}

// cloneRange clones the first chunk of from into chunk i of to.
func cloneRange(t *testing.T, from, to string, i int) {
	t.Helper()
	src, _ := os.Open(from)
	defer src.Close()
	dst, _ := os.OpenFile(to, os.O_WRONLY, 0)
	defer dst.Close()
	err := unix.IoctlFileCloneRange(int(dst.Fd()), &unix.FileCloneRange{Src_fd: int64(src.Fd()), Src_length: cs, Dest_offset: uint64(i) * cs})
	if err != nil {
		t.Fatal(err)
	}
}

// restoreFromChunks restores a snapshot from its chunks alone (no clone)
// and compares it with want.
func restoreFromChunks(t *testing.T, c *Chunks, id string, want []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	reflink := c.reflink
	c.reflink = false
	defer func() { c.reflink = reflink }()
	if err := c.Restore(context.Background(), id, out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Errorf("snapshot %s restored from its chunks differs from the volume", id)
	}
}

// sameBlocks on made-up maps (chunks of 8 bytes): a chunk is the parent's
// only where every byte is a hole in both or at the same physical address
// in extents whose addresses mean something and equally written.
func TestSameBlocks(t *testing.T) {
	ext := func(l, p, n uint64, flags uint32) extent {
		return extent{logical: l, physical: p, length: n, flags: flags}
	}
	parent := []extent{ext(0, 100, 32, 0), ext(48, 300, 8, 0), ext(56, 400, 8, fiemapExtentUnwritten)}
	cases := []struct {
		name string
		vol  []extent
		want []bool
	}{
		{"the same map", parent, []bool{true, true, true, true, true, true, true, true}},
		{"one extent split in two", []extent{ext(0, 100, 12, 0), ext(12, 112, 20, fiemapExtentShared), ext(48, 300, 8, 0), ext(56, 400, 8, fiemapExtentUnwritten)},
			[]bool{true, true, true, true, true, true, true, true}},
		{"other blocks (shared elsewhere)", []extent{ext(0, 100, 8, 0), ext(8, 900, 8, fiemapExtentShared), ext(16, 116, 16, 0), ext(48, 300, 8, 0), ext(56, 400, 8, fiemapExtentUnwritten)},
			[]bool{true, false, true, true, true, true, true, true}},
		{"the same blocks at another offset", []extent{ext(0, 108, 8, 0), ext(8, 108, 24, 0), ext(48, 300, 8, 0), ext(56, 400, 8, fiemapExtentUnwritten)},
			[]bool{false, true, true, true, true, true, true, true}},
		{"data where the parent has a hole", append(append([]extent{}, parent[0]), ext(36, 500, 4, 0), parent[1], parent[2]),
			[]bool{true, true, true, true, false, true, true, true}},
		{"a hole where the parent has data", []extent{ext(0, 100, 28, 0), ext(48, 300, 8, 0), ext(56, 400, 8, fiemapExtentUnwritten)},
			[]bool{true, true, true, false, true, true, true, true}},
		{"unsure addresses (delalloc, encoded)", []extent{ext(0, 100, 8, 0x4), ext(8, 108, 24, 0x8), ext(48, 300, 8, 0), ext(56, 400, 8, fiemapExtentUnwritten)},
			[]bool{false, false, false, false, true, true, true, true}},
		{"written where the parent's is unwritten", []extent{ext(0, 100, 32, 0), ext(48, 300, 8, 0), ext(56, 400, 8, 0)},
			[]bool{true, true, true, true, true, true, true, false}},
	}
	for _, tc := range cases {
		if got := sameBlocks(tc.vol, parent, 64, 64, 8); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A parent shorter than the volume: its last chunk (7 bytes) is not the
	// volume's (8), and the chunks beyond it are not its.
	if got := sameBlocks(parent, parent, 64, 55, 8); !slices.Equal(got, []bool{true, true, true, true, true, true, false, false}) {
		t.Errorf("shorter parent: %v", got)
	}
}
