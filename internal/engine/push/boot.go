package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/store/snapstore"
)

// bootMode reads the boot loaders on the snapshot's disk through the
// store (its first sectors and its EFI system partition, which is copied
// to the state directory's tmp/ for mdir and removed) and picks the boot
// mode to register.
func (j *job) bootMode(ctx context.Context) (string, error) {
	disk := &storeDisk{store: j.store, m: j.m, idx: -1}
	l, err := bootdisk.DetectFrom(ctx, disk, j.m.Size, filepath.Join(j.lc.Dir(), "tmp"))
	return chooseMode(j.im, l, err, j.o.AllowNoLoader, j.o.Log)
}

// chooseMode is the boot mode to register im with, given the loaders
// detected on its disk (derr: they could not be read): the image's own
// boot mode when its disk boots it, else the loaders'. A disk EC2 could
// not boot is refused with the reason, unless allow (--allow-no-loader)
// and the disk has no loader at all: it is then registered with no boot
// mode.
func chooseMode(im *plugin.Image, l bootdisk.Loaders, derr error, allow bool, log *slog.Logger) (string, error) {
	if derr != nil {
		if allow {
			log.Warn("the image's boot loaders could not be read; it is registered with no boot mode (--allow-no-loader)", "image", im.ID, "err", derr)
			return "", nil
		}
		return "", fmt.Errorf("push %s: %w", im.ID, derr)
	}
	mode, err := bootdisk.Mode(l, im.Architecture, im.BootMode)
	switch {
	case err == nil:
		log.Info("boot loaders", "image", im.ID, "found", l.String(), "boot_mode", mode)
		return mode, nil
	case allow && errors.Is(err, bootdisk.ErrNoLoader):
		log.Warn("the image has no boot loader; it is registered with no boot mode (--allow-no-loader)", "image", im.ID, "why", err)
		return "", nil
	case errors.Is(err, bootdisk.ErrNoLoader):
		return "", fmt.Errorf("push %s refused: %w; --allow-no-loader registers it anyway, with no boot mode", im.ID, err)
	}
	return "", fmt.Errorf("push %s refused: %w", im.ID, err)
}

// storeDisk reads a snapshot's disk through the store's chunks, without
// restoring it; it keeps the last chunk read.
type storeDisk struct {
	store *snapstore.Chunks
	m     *snapstore.Manifest
	mu    sync.Mutex
	idx   int
	data  []byte
}

// ReadAt implements io.ReaderAt.
func (d *storeDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := int64(d.m.ChunkSize)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= d.m.Size {
			return n, io.EOF
		}
		i := pos / cs
		c, err := d.chunk(int(i))
		if err != nil {
			return n, err
		}
		n += copy(p[n:], c[pos-i*cs:])
	}
	return n, nil
}

// chunk is chunk i, zero-padded to its length on the disk.
func (d *storeDisk) chunk(i int) ([]byte, error) {
	if i == d.idx {
		return d.data, nil
	}
	cs := int64(d.m.ChunkSize)
	data := make([]byte, min(cs, d.m.Size-int64(i)*cs))
	if i < len(d.m.Chunks) && d.m.Chunks[i] != "" {
		c, err := d.store.ReadChunk(d.m.Chunks[i])
		if err != nil {
			return nil, err
		}
		copy(data, c)
	}
	d.idx, d.data = i, data
	return data, nil
}
