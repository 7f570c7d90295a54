// Package boot runs the boot-tested pipelines end to end, as root: it
// builds foundations with `aminate foundation`, bakes on them and launches
// the images like EC2 (firmware, the disk's own boot loader, cloud-init's
// metadata, an ssh login) under qemu. It is a package of its own so that
// go test runs it beside test/e2e's tests, which run one after another.
package boot

import (
	"testing"

	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// The harness's names, as this package's tests use them.
type (
	cloud  = e2etest.Cloud
	result = e2etest.Result
)

var (
	isolated     = e2etest.Isolated
	mustOK       = e2etest.MustOK
	readFile     = e2etest.ReadFile
	dpkgStatus   = e2etest.DpkgStatus
	hostListener = e2etest.HostListener
)
