package snapstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/aminator-go/aminator/internal/ui/progress"
)

// Restore writes snapshot id to the new file dst: a reflink clone of the
// snapshot's clone when the store has one whose record matches the
// manifest, else the chunks, each verified against its hash, with zero
// chunks left as holes (and then a new clone is kept for next time).
func (c *Chunks) Restore(ctx context.Context, id, dst string) error {
	m, sum, err := c.loadManifest(id)
	if err != nil {
		return err
	}
	if c.reflink {
		if f := c.verifiedClone(id, sum); f != nil {
			err := cloneFile(f, dst)
			f.Close()
			if err == nil {
				return nil
			}
		}
	}
	unlock, err := c.readerLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w", id, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Truncate(m.Size); err != nil {
		return err
	}
	want := make([]bool, len(m.Chunks))
	for i, h := range m.Chunks {
		want[i] = h != ""
	}
	bar := progress.Start(ctx, "restoring snapshot "+id, chunkBytes(want, m.Size, m.ChunkSize), progress.Bytes)
	defer bar.Done()
	err = parallel(ctx, want, runtime.GOMAXPROCS(0), func(i int) error {
		defer bar.Add(min(int64(m.ChunkSize), m.Size-int64(i)*int64(m.ChunkSize)))
		data, err := c.readChunk(m.Chunks[i])
		if err == nil {
			_, err = tmp.WriteAt(data, int64(i)*int64(m.ChunkSize))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("restore snapshot %s: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	ok = true
	if c.reflink { // next time: a clone
		if err := c.recordClone(dst, id, sum); err != nil {
			c.log.Debug("no clone of the snapshot for fast volumes", "err", err)
		}
	}
	return nil
}
