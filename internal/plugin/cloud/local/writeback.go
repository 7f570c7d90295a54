package local

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ScratchVolumes says a bake's volume needs no durability of its own
// (plugin.ScratchVolumer): the snapshot reads the volume's file and the
// store makes what it keeps durable itself (chunks cloned from written-
// back blocks, then synced; see snapstore), so the filesystem in the
// volume is mounted without cache flushes.
func (c *Cloud) ScratchVolumes() bool { return true }

// writebackEvery is how often an attached volume's file is written back.
const writebackEvery = 100 * time.Millisecond

// startWriteback starts writing back the file at path every
// writebackEvery until stop is called. Its filesystem mounted without
// flushes, a volume's new data would otherwise stay dirty in the page
// cache until the snapshot, whose change detection (FIEMAP, which writes
// the file back first) would then do all that I/O on the bake's path;
// started as it is written, it overlaps the package manager's run.
func startWriteback(path string) (stop func()) {
	f, err := os.Open(path)
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(writebackEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			f.Close()
		})
	}
}
