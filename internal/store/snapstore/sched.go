package snapstore

import (
	"context"
	"runtime"
	"sync"
)

// putWorkers is how many chunks a Put handles at once: more than the
// cores, since a worker mostly waits for its chunk file to be synced.
func putWorkers() int { return max(8, runtime.GOMAXPROCS(0)) }

// commitWorkers sync chunk files at once, so they share log forces.
const commitWorkers = 32

// parallel runs fn for every index marked in todo on workers goroutines
// and returns the first error; after an error or cancellation no new
// index starts.
func parallel(ctx context.Context, todo []bool, workers int, fn func(i int) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	idx := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i, t := range todo {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		if t {
			idx <- i
		}
	}
	close(idx)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// chunkBytes is how many bytes the marked chunks of a size-byte volume hold.
func chunkBytes(todo []bool, size int64, chunk int) int64 {
	var n int64
	for i, t := range todo {
		if t {
			n += min(int64(chunk), size-int64(i)*int64(chunk))
		}
	}
	return n
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}
