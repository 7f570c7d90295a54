// Package diskdigest computes an image's disk digest: the identity of a
// raw disk that provenance names as its subject (in-toto DigestSet key
// Algorithm, "chunkedSha256-512k").
//
// The digest is a hash list, not the SHA-256 of the disk's bytes:
//
//	digest = SHA-256( SHA-256(chunk_0) || SHA-256(chunk_1) || ... )
//
// over the raw disk cut into chunks of ChunkSize (512 KiB) bytes, in
// order. Every chunk counts, all-zero ones included (their hash is the
// SHA-256 of that many zero bytes); the last chunk may be short and is
// hashed at its real length; each inner hash is its raw 32 bytes, not
// hex. The result is written in lower-case hex. A disk of size 0 has no
// chunks: its digest is the SHA-256 of nothing.
//
// Why not the SHA-256 of the disk: that cannot be composed from parts,
// so it would mean reading every byte of every image again after each
// bake. 512 KiB is the chunk size of the local cloud's content-addressed
// store (snapstore) and the block size of the EBS direct APIs, whose
// chunks are named by their SHA-256 already: FromChunkHashes gives a
// snapshot's digest from its manifest alone, in microseconds. Where no
// such list exists, OfFile reads a raw file or block device once, its
// chunks hashed in parallel and its holes not read at all.
package diskdigest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aminator-go/aminator/internal/sys/sparse"
)

// Algorithm names the digest, as the key of an in-toto DigestSet.
const Algorithm = "chunkedSha256-512k"

// ChunkSize is the size of the chunks the disk is cut into, in bytes.
const ChunkSize = 512 << 10

type sum = [sha256.Size]byte

// zeroFull is the SHA-256 of a whole chunk of zeros.
var zeroFull = sync.OnceValue(func() sum { return sha256.Sum256(make([]byte, ChunkSize)) })

// zeroSum is the SHA-256 of n zero bytes (n <= ChunkSize).
func zeroSum(n int64) sum {
	if n == ChunkSize {
		return zeroFull()
	}
	return sha256.Sum256(make([]byte, n))
}

// chunks is how many chunks a disk of size bytes has.
func chunks(size int64) int64 { return (size + ChunkSize - 1) / ChunkSize }

// chunkLen is the length of chunk i of a disk of size bytes.
func chunkLen(i, size int64) int64 { return min(ChunkSize, size-i*ChunkSize) }

// FromChunkHashes is the digest of a disk of size bytes whose chunks have
// the given SHA-256 hashes (hex), in order; "" stands for an all-zero
// chunk. It reads nothing.
func FromChunkHashes(hashes []string, size int64) (string, error) {
	if size < 0 {
		return "", fmt.Errorf("disk digest: negative size %d", size)
	}
	if n := chunks(size); int64(len(hashes)) != n {
		return "", fmt.Errorf("disk digest: %d chunk hashes for a disk of %d bytes, which has %d chunks of %d bytes",
			len(hashes), size, n, ChunkSize)
	}
	outer := sha256.New()
	var s sum
	for i, h := range hashes {
		if h == "" {
			s = zeroSum(chunkLen(int64(i), size))
		} else if len(h) != 2*sha256.Size {
			return "", fmt.Errorf("disk digest: hash of chunk %d is %q, not 64 hex digits", i, h)
		} else if _, err := hex.Decode(s[:], []byte(h)); err != nil {
			return "", fmt.Errorf("disk digest: hash of chunk %d is %q, not 64 hex digits: %w", i, h, err)
		}
		outer.Write(s[:])
	}
	return hex.EncodeToString(outer.Sum(nil)), nil
}

// OfFile is the digest of the first size bytes of f, a raw disk file or
// a block device, read once. Chunks are hashed in parallel, one worker per
// CPU; a chunk wholly in a hole (SEEK_HOLE, where the file system has
// them) is not read. A regular file shorter than size is an error.
func OfFile(ctx context.Context, f *os.File, size int64) (string, error) {
	if size < 0 {
		return "", fmt.Errorf("disk digest of %s: negative size %d", f.Name(), size)
	}
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("disk digest: %w", err)
	}
	if st.Mode().IsRegular() && st.Size() < size {
		return "", fmt.Errorf("disk digest of %s: the file has %d bytes, not %d", f.Name(), st.Size(), size)
	}
	exts, err := sparse.DataExtents(f, size)
	if err != nil {
		return "", fmt.Errorf("disk digest: %w", err)
	}
	data := make([]bool, chunks(size))
	for _, e := range exts {
		for i := e.Off / ChunkSize; i*ChunkSize < e.Off+e.Len && i < int64(len(data)); i++ {
			data[i] = true
		}
	}
	d, err := digest(ctx, f, size, data)
	if err != nil {
		return "", fmt.Errorf("disk digest of %s: %w", f.Name(), err)
	}
	return d, nil
}

// Of is the digest of the first size bytes of r, every chunk read once,
// in parallel, one worker per CPU.
func Of(ctx context.Context, r io.ReaderAt, size int64) (string, error) {
	if size < 0 {
		return "", fmt.Errorf("disk digest: negative size %d", size)
	}
	d, err := digest(ctx, r, size, nil)
	if err != nil {
		return "", fmt.Errorf("disk digest: %w", err)
	}
	return d, nil
}

// digest reads and hashes the chunks of r marked in data (nil: all); the
// others are zero.
func digest(ctx context.Context, r io.ReaderAt, size int64, data []bool) (string, error) {
	sums := make([]sum, chunks(size))
	var todo []int64
	for i := range sums {
		if data == nil || data[i] {
			todo = append(todo, int64(i))
		} else {
			sums[i] = zeroSum(chunkLen(int64(i), size))
		}
	}
	err := parallel(ctx, len(todo), func(k int, buf []byte) error {
		i := todo[k]
		b := buf[:chunkLen(i, size)]
		n, err := r.ReadAt(b, i*ChunkSize)
		if n < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read %d bytes at %d: %w", len(b), i*ChunkSize, err)
		}
		if len(b) == ChunkSize && allZero(b) {
			sums[i] = zeroFull() // a copy of a hash beats hashing zeros
		} else {
			sums[i] = sha256.Sum256(b)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	outer := sha256.New()
	for i := range sums {
		outer.Write(sums[i][:])
	}
	return hex.EncodeToString(outer.Sum(nil)), nil
}

// parallel calls fn(k, buf) for k in [0, n) on one worker per CPU, each
// with a buffer of ChunkSize bytes of its own, and returns the first
// error; after an error or cancellation no new call starts.
func parallel(ctx context.Context, n int, fn func(k int, buf []byte) error) error {
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		failed   atomic.Bool
		wg       sync.WaitGroup
	)
	for range min(runtime.NumCPU(), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, ChunkSize)
			for !failed.Load() {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(k, buf)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// allZero reports whether b holds only zero bytes; it compares words,
// since a disk is mostly zeros and this runs on every chunk read.
func allZero(b []byte) bool {
	for len(b) >= 32 {
		if binary.LittleEndian.Uint64(b)|binary.LittleEndian.Uint64(b[8:])|
			binary.LittleEndian.Uint64(b[16:])|binary.LittleEndian.Uint64(b[24:]) != 0 {
			return false
		}
		b = b[32:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
