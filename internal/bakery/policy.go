package bakery

import (
	"errors"
	"fmt"
	"time"
)

// Sizes a request may have.
const (
	MaxTags     = 50
	MaxCI       = 20
	maxValueLen = 256
	maxFieldLen = 1024
)

// checkSizes bounds the request's strings and maps.
func (r *Request) checkSizes() error {
	for _, s := range r.stringFields() {
		if len(s) > maxFieldLen {
			return fmt.Errorf("%.40q...: fields are at most %d bytes", s, maxFieldLen)
		}
	}
	if len(r.Tags) > MaxTags {
		return fmt.Errorf("%d tags: at most %d", len(r.Tags), MaxTags)
	}
	if len(r.CI) > MaxCI {
		return fmt.Errorf("%d ci entries: at most %d", len(r.CI), MaxCI)
	}
	for _, m := range []map[string]string{r.Tags, r.CI} {
		for k, v := range m {
			if len(v) > maxValueLen {
				return fmt.Errorf("tag %q: values are at most %d bytes", k, maxValueLen)
			}
		}
	}
	if r.TimeoutSeconds < 0 {
		return errors.New("timeout_seconds must not be negative")
	}
	return nil
}

// Timeouts of a bake.
const (
	DefaultTimeout = 60 * time.Minute
	MaxTimeout     = 6 * time.Hour
)

// Policy is what the API and the workers both check a request against.
type Policy struct {
	// PackageDir: the one directory local package files may come from ("": none).
	PackageDir string
	// DefaultTimeout and MaxTimeout bound a bake (0: the package's defaults).
	DefaultTimeout, MaxTimeout time.Duration
}

// Check validates a request under the policy.
func (p Policy) Check(r *Request) error {
	if err := r.Validate(p.PackageDir); err != nil {
		return err
	}
	if t, limit := time.Duration(r.TimeoutSeconds)*time.Second, p.maxTimeout(); t > limit {
		return fmt.Errorf("timeout_seconds %d is over this bakery's maximum of %d", r.TimeoutSeconds, int(limit.Seconds()))
	}
	return nil
}

func (p Policy) maxTimeout() time.Duration {
	if p.MaxTimeout > 0 {
		return p.MaxTimeout
	}
	return MaxTimeout
}

// Timeout is how long a request's bake may run.
func (p Policy) Timeout(r *Request) time.Duration {
	if r.TimeoutSeconds > 0 {
		return min(time.Duration(r.TimeoutSeconds)*time.Second, p.maxTimeout())
	}
	if p.DefaultTimeout > 0 {
		return min(p.DefaultTimeout, p.maxTimeout())
	}
	return min(DefaultTimeout, p.maxTimeout())
}
