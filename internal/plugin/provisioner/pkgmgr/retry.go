package pkgmgr

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
)

// DefaultBackoff is the wait after a first failed attempt; the n-th
// failure waits n times as long.
const DefaultBackoff = 2 * time.Second

// permanent marks an error that another attempt cannot fix (an HTTP 4xx,
// a refused address, a wrong checksum).
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// retry is the one retry policy of every backend, for refreshing metadata
// and for downloads: fn runs up to attempts times (at least once) until
// it succeeds, waiting backoff, 2×backoff, ... between attempts, and stops
// at once when ctx ends or the error is permanent. The waits are never
// part of an install time.
func retry(ctx context.Context, log *slog.Logger, what string, attempts int, backoff time.Duration, fn func() error) error {
	for i := 1; ; i++ {
		err := fn()
		if err == nil {
			return nil
		}
		var p permanent
		if ctx.Err() != nil || errors.As(err, &p) || i >= max(1, attempts) {
			return err
		}
		first, _, _ := strings.Cut(err.Error(), "\n")
		log.Warn(what+" failed; retrying", "err", first, "attempt", i)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i) * backoff):
		}
	}
}
