package ec2_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/plugin/cloud/cloudtest"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// The EC2 cloud passes the conformance suite against moto (skipped when
// moto is not installed), with a pool, listing and gc, and no manifests or
// disks on this host. moto reports creation times in whole seconds,
// ignores RegisterImage's block device mappings and attaches an attached
// volume again; real EC2 does neither. moto keeps data only for snapshots
// written through the EBS direct APIs, so the suite's base snapshot is one
// (a 2 GiB disk with a little data, in moto's 512-byte blocks), read back
// through MotoEBS, and new snapshots' digests are not checked.
func TestConformance(t *testing.T) {
	cloudtest.Run(t, func(t *testing.T) *cloudtest.Fixture {
		e := ec2test.Start(t)
		c := ebsCloud(t)
		lockDir := t.TempDir()
		c.UseDirs(t.TempDir(), lockDir)
		return &cloudtest.Fixture{Cloud: c, BaseSnapshot: e.PutSnapshot(t, sparseDisk(t, 2), 2, 512), SnapshotsKeepNoData: true, Attach: true, Device: "/dev/sdf", Tick: time.Second,
			IgnoresMappings: true, Reattaches: true,
			Capabilities: []string{cloudtest.Pool, cloudtest.Lister, cloudtest.GCPlanner, cloudtest.DiskDigests},
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
