// Package ec2 runs aminate end to end against EC2's API (moto) and the
// instance metadata service (amazon-ec2-metadata-mock), as root: bakes,
// pushes of local images (EBS and S3 bundles), the volume pool and gc
// against them. It is a package of its own so that go test runs it beside
// test/e2e's tests, which run one after another.
package ec2

import (
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// The harness's names, as this package's tests use them.
type (
	cloud  = e2etest.Cloud
	result = e2etest.Result
)

const baseName = e2etest.BaseName

var (
	isolated = e2etest.Isolated
	mustOK   = e2etest.MustOK
	readFile = e2etest.ReadFile
)

// The shared cloud, which the EC2 tests (one after another) use.

func shared() *cloud { return e2etest.Shared() }

func aminate(t *testing.T, args ...string) result {
	t.Helper()
	return e2etest.Shared().Aminate(t, args...)
}

func aminateEnv(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return e2etest.Shared().AminateEnv(t, extraEnv, args...)
}

// base imports the Debian base into the shared cloud once and returns its id.
func base(t *testing.T) string {
	t.Helper()
	return e2etest.Shared().Base(t)
}

func showImage(t *testing.T, ref string) *plugin.Image {
	t.Helper()
	return e2etest.Shared().ShowImage(t, ref)
}

// binary is the aminate binary under test.
func binary() string { return e2etest.Binary() }

// workDir is the run's work directory, every cloud of the run under it.
func workDir() string { return e2etest.WorkDir() }

// stateDir is the shared cloud's state directory.
func stateDir() string { return e2etest.Shared().State }
