package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/sys/flock"
)

// poolTarget is what this host keeps of one snapshot's pool.
type poolTarget struct {
	Target int    `json:"target"`
	Base   string `json:"base"`
}

// The pool targets live in the state directory (they are this host's):
// ec2-pools.json maps "REGION/SNAPSHOT" to its target. A drained pool has
// no entry, so a bake of an unpooled base asks nothing of EC2.
func (c *Cloud) targetsFile() string { return filepath.Join(c.stateDir, "ec2-pools.json") }

// poolTargets reads this region's targets, by snapshot.
func (c *Cloud) poolTargets() (map[string]poolTarget, error) {
	all, err := c.readTargets()
	if err != nil {
		return nil, err
	}
	out := map[string]poolTarget{}
	prefix := c.region + "/"
	for k, t := range all {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			out[k[len(prefix):]] = t
		}
	}
	return out, nil
}

// poolTarget is one snapshot's target, nil when it has none.
func (c *Cloud) poolTarget(snap string) (*poolTarget, error) {
	all, err := c.readTargets()
	if err != nil {
		return nil, err
	}
	if t, ok := all[c.region+"/"+snap]; ok {
		return &t, nil
	}
	return nil, nil
}

func (c *Cloud) readTargets() (map[string]poolTarget, error) {
	if c.stateDir == "" {
		return nil, nil // no state directory: no pools
	}
	b, err := os.ReadFile(c.targetsFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pool targets: %w", err)
	}
	var all map[string]poolTarget
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("pool targets %s: %w", c.targetsFile(), err)
	}
	return all, nil
}

// setPoolTarget sets (nil: forgets) a snapshot's target, under a lock,
// replacing the file whole so readers never see half of it.
func (c *Cloud) setPoolTarget(snap string, t *poolTarget) error {
	if c.stateDir == "" || c.lockDir == "" {
		return errors.New("pool: the ec2 cloud has no state directory")
	}
	for _, d := range []string{c.lockDir, c.stateDir} { // a host that never ran the local cloud has neither
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("pool targets: %w", err)
		}
	}
	lock, err := flock.Exclusive(context.Background(), filepath.Join(c.lockDir, "ec2-pools.lock"))
	if err != nil {
		return fmt.Errorf("pool targets: %w", err)
	}
	defer lock.Unlock()
	all, err := c.readTargets()
	if err != nil {
		return err
	}
	if all == nil {
		all = map[string]poolTarget{}
	}
	if t == nil {
		delete(all, c.region+"/"+snap)
	} else {
		all[c.region+"/"+snap] = *t
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.stateDir, ".ec2-pools-*")
	if err != nil {
		return fmt.Errorf("pool targets: %w", err)
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Close(), os.Rename(tmp.Name(), c.targetsFile())); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("pool targets: %w", err)
	}
	return nil
}
