package diskdigest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reference is the definition, written as plainly as it reads: one
// thread, every chunk hashed, the inner hashes' raw bytes hashed again.
func reference(disk []byte) string {
	outer := sha256.New()
	for off := 0; off < len(disk); off += ChunkSize {
		s := sha256.Sum256(disk[off:min(off+ChunkSize, len(disk))])
		outer.Write(s[:])
	}
	return hex.EncodeToString(outer.Sum(nil))
}

// hashes are a store's chunk hashes of disk: "" for an all-zero chunk
// when blank is set, else every chunk's SHA-256.
func hashes(disk []byte, blank bool) []string {
	var out []string
	for off := 0; off < len(disk); off += ChunkSize {
		c := disk[off:min(off+ChunkSize, len(disk))]
		if blank && bytes.Count(c, []byte{0}) == len(c) {
			out = append(out, "")
			continue
		}
		s := sha256.Sum256(c)
		out = append(out, hex.EncodeToString(s[:]))
	}
	return out
}

// sparseFile writes disk to a new file, leaving its all-zero 4 KiB
// blocks as holes except where zeros says to write them (allocated zeros).
func sparseFile(t *testing.T, disk []byte, zeros bool) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(int64(len(disk))); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(disk); off += 4096 {
		b := disk[off:min(off+4096, len(disk))]
		if zeros || !allZero(b) {
			if _, err := f.WriteAt(b, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// randomDisk is size bytes, mostly zeros, with runs of random data at
// random places (some within a chunk, some across chunks).
func randomDisk(r *mrand.Rand, size int) []byte {
	disk := make([]byte, size)
	for range r.IntN(8) {
		if size == 0 {
			break
		}
		off := r.IntN(size)
		n := min(1+r.IntN(2*ChunkSize), size-off)
		rand.Read(disk[off : off+n])
	}
	return disk
}

func TestAgreesWithReference(t *testing.T) {
	ctx := context.Background()
	sizes := []int{0, 1, 4096, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 100, 8 * ChunkSize}
	r := mrand.New(mrand.NewPCG(21, 512))
	for range 6 {
		sizes = append(sizes, 1+r.IntN(10*ChunkSize))
	}
	for _, size := range sizes {
		for _, empty := range []bool{true, false} {
			disk := make([]byte, size)
			if !empty {
				disk = randomDisk(r, size)
			}
			want := reference(disk)
			check := func(how string, got string, err error) {
				t.Helper()
				if err != nil || got != want {
					t.Errorf("size %d (all zero %v): %s = %s, %v; want %s", size, empty, how, got, err, want)
				}
			}
			for _, blank := range []bool{true, false} {
				got, err := FromChunkHashes(hashes(disk, blank), int64(size))
				check("FromChunkHashes", got, err)
			}
			got, err := OfFile(ctx, sparseFile(t, disk, false), int64(size))
			check("OfFile (holes)", got, err)
			got, err = OfFile(ctx, sparseFile(t, disk, true), int64(size))
			check("OfFile (zeros written)", got, err)
			got, err = Of(ctx, bytes.NewReader(disk), int64(size))
			check("Of", got, err)
		}
	}
}

// TestKnownAnswer pins the definition to a value computed outside Go:
// two zero chunks and a 100-byte last chunk of "a", with coreutils:
//
//	z=$(head -c 524288 /dev/zero | sha256sum | cut -c1-64)
//	a=$(head -c 100 /dev/zero | tr '\0' a | sha256sum | cut -c1-64)
//	echo "$z$z$a" | xxd -r -p | sha256sum
func TestKnownAnswer(t *testing.T) {
	size := int64(2*ChunkSize + 100)
	a := sha256.Sum256(bytes.Repeat([]byte("a"), 100))
	got, err := FromChunkHashes([]string{"", "", hex.EncodeToString(a[:])}, size)
	const want = "e02e4b6cf65772c536509b5dbf59008e7ae4265dd97df45283d90e78aa20bab9"
	if err != nil || got != want {
		t.Errorf("FromChunkHashes = %s, %v; want %s", got, err, want)
	}
	if got, err := FromChunkHashes(nil, 0); err != nil || got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("the empty disk: %s, %v; want the SHA-256 of nothing", got, err)
	}
}

// Any byte changed, in data or in a hole, changes the digest.
func TestFlippedByte(t *testing.T) {
	ctx := context.Background()
	disk := make([]byte, 4*ChunkSize+7)
	rand.Read(disk[ChunkSize : 2*ChunkSize])
	f := sparseFile(t, disk, false)
	before, err := OfFile(ctx, f, int64(len(disk)))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{ChunkSize + 5, 3 * ChunkSize, int64(len(disk) - 1), 0} {
		var b [1]byte
		f.ReadAt(b[:], off)
		f.WriteAt([]byte{b[0] ^ 1}, off)
		after, err := OfFile(ctx, f, int64(len(disk)))
		if err != nil || after == before {
			t.Errorf("byte %d flipped: digest %s, %v; want a new one", off, after, err)
		}
		f.WriteAt(b[:], off)
		if again, _ := OfFile(ctx, f, int64(len(disk))); again != before {
			t.Errorf("byte %d restored: digest %s, want %s", off, again, before)
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	good := strings.Repeat("ab", 32)
	for _, c := range []struct {
		hashes []string
		size   int64
		want   string
	}{
		{[]string{good}, 2 * ChunkSize, "1 chunk hashes for a disk of 1048576 bytes, which has 2 chunks"},
		{[]string{good, ""}, 1, "2 chunk hashes for a disk of 1 bytes, which has 1 chunks"},
		{nil, 1, "0 chunk hashes"},
		{[]string{good[:62]}, 10, `hash of chunk 0 is "` + good[:62] + `", not 64 hex digits`},
		{[]string{"", strings.Repeat("zz", 32)}, ChunkSize + 1, "hash of chunk 1 is"},
		{nil, -1, "negative size"},
	} {
		if _, err := FromChunkHashes(c.hashes, c.size); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromChunkHashes(%q, %d): %v; want an error saying %q", c.hashes, c.size, err, c.want)
		}
	}
	f := sparseFile(t, make([]byte, ChunkSize), false)
	if _, err := OfFile(ctx, f, ChunkSize+1); err == nil || !strings.Contains(err.Error(), "has 524288 bytes, not 524289") {
		t.Errorf("OfFile past the end: %v", err)
	}
	if _, err := Of(ctx, bytes.NewReader(make([]byte, 10)), 11); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("Of past the end: %v; want an unexpected EOF", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	data := make([]byte, 4*ChunkSize)
	rand.Read(data)
	if _, err := OfFile(cancelled, sparseFile(t, data, false), int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Errorf("OfFile with a cancelled context: %v", err)
	}
}
