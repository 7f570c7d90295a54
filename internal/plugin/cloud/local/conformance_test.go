package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin/cloud/cloudtest"
	"github.com/aminator-go/aminator/internal/sys/flock"
)

// The local cloud passes the conformance suite, with every optional
// capability; attaching (loop devices) is tested only as root.
func TestConformance(t *testing.T) {
	cloudtest.Run(t, func(t *testing.T) *cloudtest.Fixture {
		c := open(t)
		im, err := c.Import(context.Background(), rawFile(t, 8<<20), ImportOptions{Name: "cloudtest-base", Architecture: "x86_64", VirtualizationType: "hvm"})
		if err != nil {
			t.Fatal(err)
		}
		return &cloudtest.Fixture{Cloud: c, BaseSnapshot: im.Root().SnapshotID, Attach: os.Geteuid() == 0,
			Capabilities: []string{cloudtest.Pool, cloudtest.Lister, cloudtest.Manifests, cloudtest.GCPlanner,
				cloudtest.Importer, cloudtest.DiskFiles, cloudtest.Checker, cloudtest.DiskDigests},
			RunningBake: func(t *testing.T, id string) { holdLock(t, filepath.Join(c.LockDir(), id+".lock")) },
			// A killed bake's volume has a free owner lock.
			Abandon: func(t *testing.T, id string) { c.releaseOwner(id) },
		}
	})
}

// holdLock holds the flock at path until the test ends.
func holdLock(t *testing.T, path string) {
	l, err := flock.TryExclusive(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path); l.Unlock() })
}
