// Package flock takes advisory locks on files with flock(2). The kernel
// drops such a lock when its holder dies, so a lock can never go stale
// after a crash or a SIGKILL.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

// ErrLocked says another process holds the lock.
var ErrLocked = errors.New("locked by another process")

func open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// TryExclusive takes the lock or returns ErrLocked at once.
func TryExclusive(path string) (*Lock, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Exclusive waits for the lock until ctx ends.
func Exclusive(ctx context.Context, path string) (*Lock, error) {
	delay := 5 * time.Millisecond
	for {
		l, err := TryExclusive(path)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 200*time.Millisecond {
			delay *= 2
		}
	}
}

// Shared waits for a shared hold of the lock: any number of processes
// hold it at once, and Held reports it held while one does.
func Shared(path string) (*Lock, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Held reports whether some process holds the lock at path.
func Held(path string) bool {
	l, err := TryExclusive(path)
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	l.Unlock()
	return false
}

// Unlock releases the lock; it is safe to call on nil or twice.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }
