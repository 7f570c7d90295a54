package snapstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
)

// ErrDigestNeedsRead is wrapped by DiskDigest's error when the snapshot's
// manifest cannot give its disk digest (its chunks are not
// diskdigest.ChunkSize long): ReadDiskDigest, which reads the data, can.
var ErrDigestNeedsRead = errors.New("the disk digest needs the snapshot's data read")

// DiskDigest is snapshot id's disk digest (package diskdigest) composed
// from its manifest's chunk hashes alone: no chunk is read.
func (c *Chunks) DiskDigest(id string) (string, error) {
	m, err := c.LoadManifest(id)
	if err != nil {
		return "", err
	}
	if m.ChunkSize != diskdigest.ChunkSize {
		return "", fmt.Errorf("snapshot %s is stored in chunks of %d bytes, the disk digest's are %d: %w",
			id, m.ChunkSize, diskdigest.ChunkSize, ErrDigestNeedsRead)
	}
	d, err := diskdigest.FromChunkHashes(m.Chunks, m.Size)
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	return d, nil
}

// ReadDiskDigest recomputes snapshot id's disk digest from its data: every
// chunk the manifest names is read, in parallel, and hashed again (a chunk
// used more than once, once), so a stored chunk that changed fails with
// ErrCorrupt. In a store of another chunk size the snapshot is read as a
// disk through its verified chunks.
func (c *Chunks) ReadDiskDigest(ctx context.Context, id string) (string, error) {
	m, err := c.LoadManifest(id)
	if err != nil {
		return "", err
	}
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	if m.ChunkSize != diskdigest.ChunkSize {
		if err := m.checkShape(); err != nil {
			return "", fmt.Errorf("snapshot %s: %w", id, err)
		}
		d, err := diskdigest.Of(ctx, &manifestReader{c: c, m: m}, m.Size)
		if err != nil {
			return "", fmt.Errorf("snapshot %s: %w", id, err)
		}
		return d, nil
	}
	d, err := diskdigest.FromChunkHashes(m.Chunks, m.Size)
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := c.verifyChunks(ctx, m); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", id, err)
	}
	return d, nil
}

// verifyChunks reads every chunk m names and checks it against its hash
// and its place's length, on more workers than cores (putWorkers), so that
// reading chunks not in the page cache overlaps hashing others.
func (c *Chunks) verifyChunks(ctx context.Context, m *Manifest) error {
	var hashes []string
	length := map[string]int64{}
	for i, h := range m.Chunks {
		if h == "" {
			continue
		}
		n := m.chunkLen(i)
		if l, seen := length[h]; !seen {
			length[h] = n
			hashes = append(hashes, h)
		} else if l != n {
			return fmt.Errorf("chunk %s stands for %d bytes and for %d: %w", h, l, n, ErrCorrupt)
		}
	}
	todo := make([]bool, len(hashes))
	for i := range todo {
		todo[i] = true
	}
	return parallel(ctx, todo, putWorkers(), func(i int) error {
		data, err := c.readChunk(hashes[i])
		if err == nil && int64(len(data)) != length[hashes[i]] {
			err = fmt.Errorf("chunk %s: %d bytes, its place holds %d: %w", hashes[i], len(data), length[hashes[i]], ErrCorrupt)
		}
		return err
	})
}

// checkShape checks that the manifest lists the chunks of its size.
func (m *Manifest) checkShape() error {
	if m.ChunkSize <= 0 || m.Size < 0 {
		return fmt.Errorf("bad manifest: size %d in chunks of %d bytes", m.Size, m.ChunkSize)
	}
	if n := (m.Size + int64(m.ChunkSize) - 1) / int64(m.ChunkSize); int64(len(m.Chunks)) != n {
		return fmt.Errorf("bad manifest: %d chunks for %d bytes in chunks of %d", len(m.Chunks), m.Size, m.ChunkSize)
	}
	return nil
}

// chunkLen is the length of chunk i of the snapshot.
func (m *Manifest) chunkLen(i int) int64 {
	return min(int64(m.ChunkSize), m.Size-int64(i)*int64(m.ChunkSize))
}

// manifestReader reads a snapshot as a disk, each chunk verified.
type manifestReader struct {
	c *Chunks
	m *Manifest
}

func (r *manifestReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	n := 0
	cs := int64(r.m.ChunkSize)
	for n < len(p) && off < r.m.Size {
		i := off / cs
		in := off - i*cs
		k := int(min(int64(len(p)-n), r.m.chunkLen(int(i))-in))
		if h := r.m.Chunks[i]; h == "" {
			clear(p[n : n+k])
		} else {
			data, err := r.c.readChunk(h)
			if err != nil {
				return n, err
			}
			if int64(len(data)) != r.m.chunkLen(int(i)) {
				return n, fmt.Errorf("chunk %s: %d bytes, its place holds %d: %w", h, len(data), r.m.chunkLen(int(i)), ErrCorrupt)
			}
			copy(p[n:n+k], data[in:])
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
