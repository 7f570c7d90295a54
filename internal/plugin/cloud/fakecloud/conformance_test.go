package fakecloud

import (
	"testing"

	"github.com/aminator-go/aminator/internal/plugin/cloud/cloudtest"
)

// The fake keeps the contract the real clouds keep (not-found, idempotency,
// cancellation), so unit tests on it mean what they would on a real cloud,
// and has the capabilities both real clouds share, and manifests.
func TestConformance(t *testing.T) {
	cloudtest.Run(t, func(t *testing.T) *cloudtest.Fixture {
		c := New()
		im := c.AddImage("cloudtest-base", 8<<20, nil)
		return &cloudtest.Fixture{Cloud: c, BaseSnapshot: im.Root().SnapshotID, Attach: true, Device: "/dev/sdf",
			Capabilities: []string{cloudtest.Pool, cloudtest.Lister, cloudtest.Manifests, cloudtest.GCPlanner},
			RunningBake:  func(t *testing.T, id string) { c.Running[id] = true }}
	})
}
