package ec2

import (
	"context"
	"fmt"
	"time"
)

// waitOpts is the longest one wait lasts (wait_timeout).
func (c *Cloud) waitOpts() time.Duration {
	if c.s.WaitTimeout <= 0 {
		return 30 * time.Minute
	}
	return c.s.WaitTimeout
}

// minDelay is the shortest time between two polls (poll_interval).
func (c *Cloud) minDelay() time.Duration {
	if c.s.PollInterval <= 0 {
		return time.Second
	}
	return c.s.PollInterval
}

// poll calls fn until it says done, an error, or the wait timeout.
func (c *Cloud) poll(ctx context.Context, what string, fn func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, c.waitOpts())
	defer cancel()
	delay := min(c.minDelay(), 250*time.Millisecond)
	for {
		done, err := fn(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: gave up after %s: %w", what, c.waitOpts(), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, c.minDelay())
	}
}
