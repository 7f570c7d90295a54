package snapstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkIncrementalPut times the snapshot of a bake on a reflink store
// (xfs): a 1 GiB volume cloned from a base holding 256 MiB, 16 chunks
// (8 MiB) of it rewritten, stored with the base as parent. It reports the
// Put's mean time (snapshot_ms); run it at two commits to compare.
func BenchmarkIncrementalPut(b *testing.B) {
	mnt := xfsDir(b)
	ctx := context.Background()
	c, err := NewChunks(filepath.Join(mnt, "store"), ChunkOptions{Compress: true, Log: benchLog()})
	if err != nil {
		b.Fatal(err)
	}
	const chunk = DefaultChunkSize
	base := filepath.Join(mnt, "base")
	f, _ := os.Create(base)
	f.Truncate(1 << 30)
	data := make([]byte, 256<<20)
	rand.Read(data)
	f.WriteAt(data, 64<<20)
	f.Close()
	if _, err := c.Put(ctx, "snap-base", "", base); err != nil {
		b.Fatal(err)
	}
	junk := make([]byte, chunk)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		vol := filepath.Join(mnt, "vol")
		if err := c.Restore(ctx, "snap-base", vol); err != nil {
			b.Fatal(err)
		}
		w, _ := os.OpenFile(vol, os.O_WRONLY, 0)
		for k := 0; k < 16; k++ {
			rand.Read(junk)
			w.WriteAt(junk, int64(128+k*30)*chunk)
		}
		w.Close()
		id := fmt.Sprintf("snap-%d", i)
		b.StartTimer()
		t0 := time.Now()
		if _, err := c.Put(ctx, id, "snap-base", vol); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		b.StopTimer()
		c.Delete(ctx, id)
		os.Remove(vol)
		if p, err := c.PlanGC(ctx); err == nil {
			p.Execute(ctx)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "snapshot_ms")
}

// BenchmarkChangeDetection times how a snapshot finds the chunks it can
// take from its parent, on a 1 GiB volume cloned from a 256 MiB base and
// then written in 4,096 scattered 4 KiB blocks over half its data (as many new extents):
// same-blocks (two FIEMAPs, physical addresses compared: exact) against
// the rule it replaced, shared-flag (one FIEMAP, the SHARED flag: unsound),
// in the same run.
func BenchmarkChangeDetection(b *testing.B) {
	mnt := xfsDir(b)
	ctx := context.Background()
	c, err := NewChunks(filepath.Join(mnt, "store"), ChunkOptions{Compress: true})
	if err != nil {
		b.Fatal(err)
	}
	base := filepath.Join(mnt, "base")
	f, _ := os.Create(base)
	f.Truncate(1 << 30)
	data := make([]byte, 256<<20)
	rand.Read(data)
	f.WriteAt(data, 64<<20)
	f.Close()
	m := &Manifest{ID: "vol", Parent: "snap-base", Size: 1 << 30, Chunks: make([]string, (1<<30)/DefaultChunkSize)}
	if _, err := c.Put(ctx, "snap-base", "", base); err != nil {
		b.Fatal(err)
	}
	vol := filepath.Join(mnt, "vol")
	if err := c.Restore(ctx, "snap-base", vol); err != nil {
		b.Fatal(err)
	}
	w, _ := os.OpenFile(vol, os.O_RDWR, 0)
	defer w.Close()
	blk := make([]byte, 4096)
	for k := int64(0); k < 4096; k++ {
		rand.Read(blk)
		w.WriteAt(blk, 64<<20+k*(128<<20)/4096) // the first half of the data
	}
	w.Sync()
	b.Run("shared-flag", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			exts, err := fileExtents(w, m.Size)
			if err != nil {
				b.Fatal(err)
			}
			sharedOnly(exts, m.Size, DefaultChunkSize)
			b.ReportMetric(float64(len(exts)), "extents")
		}
	})
	b.Run("same-blocks", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, same := c.sameAsParent(w, m); !same[500] {
				b.Fatal("an unchanged chunk not found")
			}
		}
	})
}

// sharedOnly is the rule sameBlocks replaced: a chunk wholly in extents
// flagged SHARED (with any file) was taken as unchanged.
func sharedOnly(exts []extent, size int64, chunk int) []bool {
	n := int((size + int64(chunk) - 1) / int64(chunk))
	covered := make([]int64, n)
	for _, e := range exts {
		if e.flags&fiemapExtentShared == 0 {
			continue
		}
		lo, hi := int64(e.logical), min(int64(e.logical+e.length), size)
		for i := lo / int64(chunk); i < int64(n) && i*int64(chunk) < hi; i++ {
			covered[i] += min((i+1)*int64(chunk), hi) - max(i*int64(chunk), lo)
		}
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = covered[i] == min(int64(i+1)*int64(chunk), size)-int64(i)*int64(chunk)
	}
	return out
}

// benchLog logs the Put's phases to stderr when LOGPUT is set.
func benchLog() *slog.Logger {
	if os.Getenv("LOGPUT") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// BenchmarkDiskDigestManifest gives the disk digest of a 2 GiB snapshot
// from its manifest alone, what a bake's provenance does: the manifest
// (4,096 chunks, 1,600 of them data) is read and parsed, its hashes
// composed; no chunk is read (the store holds none). MB/s is of the
// disk's size.
func BenchmarkDiskDigestManifest(b *testing.B) {
	const size = 2 << 30
	c, err := NewChunks(filepath.Join(b.TempDir(), "store"), ChunkOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m := Manifest{Version: 1, ID: "snap-2g", Size: size, ChunkSize: DefaultChunkSize, Created: time.Now(),
		Chunks: make([]string, size/DefaultChunkSize)}
	for i := range m.Chunks {
		if i%5 < 2 {
			m.Chunks[i] = hashOf([]byte(fmt.Sprint(i)))
		}
	}
	j, _ := json.Marshal(m)
	if err := c.writeManifest(m.ID, j); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for range b.N {
		if _, err := c.DiskDigest(m.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiskDigest gives the disk digest of 2 GiB snapshots in a store
// on the test's file system (not a reflink one) by reading and verifying
// every chunk (what verify does) of a typical root disk (800 MiB of data in
// 8 MiB runs, zeros elsewhere) and of one all data, with the chunk files
// in the page cache (warm) and dropped from it first (cold:
// POSIX_FADV_DONTNEED on each). MB/s is of the disk's size; data_MB/s of
// the chunks read.
func BenchmarkDiskDigest(b *testing.B) {
	const size = 2 << 30
	dir := b.TempDir()
	ctx := context.Background()
	c, err := NewChunks(filepath.Join(dir, "store"), ChunkOptions{Compress: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct {
		id   string
		data int64
	}{{"snap-mixed", 800 << 20}, {"snap-full", size}} {
		src := filepath.Join(dir, s.id)
		benchDisk(b, src, size, s.data, byte(s.data>>20))
		if _, err := c.Put(ctx, s.id, "", src); err != nil {
			b.Fatal(err)
		}
		os.Remove(src)
	}
	for _, r := range []struct {
		name, id string
		data     int64
		cold     bool
	}{
		{"read-mixed-warm", "snap-mixed", 800 << 20, false}, {"read-mixed-cold", "snap-mixed", 800 << 20, true},
		{"read-all-data-warm", "snap-full", size, false}, {"read-all-data-cold", "snap-full", size, true},
	} {
		b.Run(r.name, func(b *testing.B) {
			b.SetBytes(size)
			var total time.Duration
			for range b.N {
				if r.cold {
					b.StopTimer()
					dropChunks(b, c)
					b.StartTimer()
				}
				t0 := time.Now()
				if _, err := c.ReadDiskDigest(ctx, r.id); err != nil {
					b.Fatal(err)
				}
				total += time.Since(t0)
			}
			b.ReportMetric(float64(r.data)*float64(b.N)/1e6/total.Seconds(), "data_MB/s")
		})
	}
}

// benchDisk writes a size-byte sparse file with data bytes of random data
// (seeded by seed) in 8 MiB runs spread evenly over it.
func benchDisk(b *testing.B, path string, size, data int64, seed byte) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	rng := mrand.NewChaCha8([32]byte{seed})
	buf := make([]byte, 8<<20)
	runs := data / int64(len(buf))
	for k := range runs {
		rng.Read(buf)
		if _, err := f.WriteAt(buf, k*(size/runs)); err != nil {
			b.Fatal(err)
		}
	}
}

// dropChunks drops the store's chunk files from the page cache.
func dropChunks(b *testing.B, c *Chunks) {
	err := filepath.WalkDir(filepath.Join(c.dir, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
	if err != nil {
		b.Fatal(err)
	}
}
