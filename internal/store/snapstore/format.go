package snapstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/klauspost/compress/zstd"
)

// Chunk formats: the first byte of a chunk file.
const (
	formatRaw  = 0 // the data follows
	formatZstd = 1 // zstd-compressed data follows
	// formatRawAligned: the data starts at rawOffset, block-aligned, so on
	// a reflink filesystem it can share blocks with a volume (a clone of
	// the volume's range, not a copy). Reflink stores write raw chunks so.
	formatRawAligned = 2
	rawOffset        = 4096
)

// ErrCorrupt marks a chunk whose content does not match its hash.
var ErrCorrupt = errors.New("corrupt chunk")

// ReadChunk reads a chunk by its hash and verifies it.
func (c *Chunks) ReadChunk(h string) ([]byte, error) { return c.readChunk(h) }

// readChunk reads and verifies a chunk.
func (c *Chunks) readChunk(h string) ([]byte, error) {
	b, err := os.ReadFile(c.chunkPath(h))
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", h, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("chunk %s: empty: %w", h, ErrCorrupt)
	}
	data := b[1:]
	switch b[0] {
	case formatRaw:
	case formatRawAligned:
		if len(b) < rawOffset {
			return nil, fmt.Errorf("chunk %s: short: %w", h, ErrCorrupt)
		}
		data = b[rawOffset:]
	case formatZstd:
		if data, err = c.dec.DecodeAll(data, nil); err != nil {
			return nil, fmt.Errorf("chunk %s: cannot decompress (%v): %w", h, err, ErrCorrupt)
		}
	default:
		return nil, fmt.Errorf("chunk %s: unknown format %d: %w", h, b[0], ErrCorrupt)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != h {
		return nil, fmt.Errorf("chunk %s: content does not match its hash: %w", h, ErrCorrupt)
	}
	return data, nil
}

func writeAll(f *os.File, b []byte, off int64) (int64, error) {
	n, err := f.WriteAt(b, off)
	return off + int64(n), err
}

// compressible tries a 16 KiB sample first, so incompressible chunks
// (packages, random data) cost a sixteenth of a full attempt.
func compressible(enc *zstd.Encoder, data []byte) bool {
	const sample = 16 << 10
	if len(data) <= 2*sample {
		return true
	}
	mid := len(data)/2 - sample/2
	z := enc.EncodeAll(data[mid:mid+sample], nil)
	return len(z) < sample*9/10
}

func allZero(b []byte) bool {
	// Compare in words: a clean chunk is mostly zero, so this is hot.
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	return bytes.Count(b, []byte{0}) == len(b)
}
