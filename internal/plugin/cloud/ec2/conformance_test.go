package ec2_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/cloudtest"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// The EC2 cloud passes the conformance suite against moto (skipped when
// moto is not installed), with a pool, listing and gc, and no manifests or
// disks on this host. moto reports creation times in whole seconds,
// ignores RegisterImage's block device mappings and attaches an attached
// volume again; real EC2 does neither.
func TestConformance(t *testing.T) {
	cloudtest.Run(t, func(t *testing.T) *cloudtest.Fixture {
		e := ec2test.Start(t)
		c := newCloud(t, nil, nil)
		lockDir := t.TempDir()
		c.UseDirs(t.TempDir(), lockDir)
		base, err := c.Image(context.Background(), plugin.ImageQuery{ID: e.BaseID})
		if err != nil {
			t.Fatal(err)
		}
		return &cloudtest.Fixture{Cloud: c, BaseSnapshot: base.Root().SnapshotID, Attach: true, Device: "/dev/sdf", Tick: time.Second,
			IgnoresMappings: true, Reattaches: true,
			Capabilities: []string{cloudtest.Pool, cloudtest.Lister, cloudtest.GCPlanner},
			RunningBake: func(t *testing.T, id string) {
				l, err := flock.TryExclusive(filepath.Join(lockDir, id+".lock"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(l.Path()); l.Unlock() })
			},
		}
	})
}
