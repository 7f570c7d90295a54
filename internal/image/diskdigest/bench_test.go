package diskdigest

import (
	"context"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

const benchSize = 2 << 30

// rawDisk writes a 2 GiB raw disk file: data MiB of random bytes in runs
// of 8 MiB spread over it, holes elsewhere (data = 2048: all data).
func rawDisk(b *testing.B, data int) *os.File {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "disk.img"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if err := f.Truncate(benchSize); err != nil {
		b.Fatal(err)
	}
	rng := mrand.NewChaCha8([32]byte{21})
	buf := make([]byte, 8<<20)
	runs := data / 8
	for k := range runs {
		rng.Read(buf)
		off := int64(k) * (benchSize / int64(runs)) // spread evenly
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

// BenchmarkOfFile digests a 2 GiB raw file: all data, and 800 MiB of
// data among holes (a typical root disk), whose holes are not read; each
// in the page cache after it is written (warm) and dropped from it before
// each digest (cold: POSIX_FADV_DONTNEED). MB/s is of the disk's size.
func BenchmarkOfFile(b *testing.B) {
	for _, c := range []struct {
		name string
		data int
	}{{"all-data", 2048}, {"800MiB-data", 800}} {
		f := rawDisk(b, c.data)
		for _, cold := range []bool{false, true} {
			name := c.name + map[bool]string{false: "-warm", true: "-cold"}[cold]
			b.Run(name, func(b *testing.B) {
				b.SetBytes(benchSize)
				for range b.N {
					if cold {
						b.StopTimer()
						if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					if _, err := OfFile(context.Background(), f, benchSize); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFromChunkHashes composes the digest of a 2 GiB disk from its
// 4,096 chunk hashes, 1,600 of them data (800 MiB), the rest zero.
func BenchmarkFromChunkHashes(b *testing.B) {
	hs := make([]string, benchSize/ChunkSize)
	for i := range hs {
		if i%5 < 2 {
			hs[i] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		}
	}
	b.SetBytes(benchSize)
	for range b.N {
		if _, err := FromChunkHashes(hs, benchSize); err != nil {
			b.Fatal(err)
		}
	}
}
