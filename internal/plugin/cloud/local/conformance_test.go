package local

import (
	"context"
	"os"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin/cloud/cloudtest"
)

// The local cloud passes the conformance suite; attaching (loop devices)
// is tested only as root.
func TestConformance(t *testing.T) {
	cloudtest.Run(t, func(t *testing.T) *cloudtest.Fixture {
		c := open(t)
		im, err := c.Import(context.Background(), rawFile(t, 8<<20), ImportOptions{Name: "cloudtest-base", Architecture: "x86_64", VirtualizationType: "hvm"})
		if err != nil {
			t.Fatal(err)
		}
		return &cloudtest.Fixture{Cloud: c, BaseSnapshot: im.Root().SnapshotID, Attach: os.Geteuid() == 0}
	})
}
