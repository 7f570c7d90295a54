// Package e2e runs the aminate binary as a user would, as root, against
// real loop devices, mounts, chroots, mmdebstrap and apt: a small Debian
// base is built once per run and imported, and every test checks that it
// leaves no mount, loop device, volume or half-made image behind. These
// tests share one cloud and run one after another; the boot-tested
// pipelines (test/e2e/boot), the tests against EC2's API (test/e2e/ec2) and
// the tests that each need a cloud of their own (test/e2e/isolated) are
// packages of their own, so go test runs them beside these.
package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	ownState     = e2etest.OwnState
	mustOK       = e2etest.MustOK
	readFile     = e2etest.ReadFile
	dpkgStatus   = e2etest.DpkgStatus
	hostListener = e2etest.HostListener
)

// The shared cloud, which the tests that run one after another use.

func env(extra ...string) []string { return e2etest.Shared().Env(extra...) }

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

// inspect restores an image's root snapshot to a file, mounts it read-only
// in this process and calls fn with the mount point.
func inspect(t *testing.T, id string, part int, fn func(root string)) {
	t.Helper()
	e2etest.Shared().Inspect(t, id, part, fn)
}

// volumeCount is how many volumes the shared cloud has, and files in volumes/.
func volumeCount(t *testing.T) (rows int, files int) {
	t.Helper()
	var vs []plugin.Volume
	if err := json.Unmarshal([]byte(mustOK(t, aminate(t, "volumes", "list", "--output", "json"))), &vs); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(e2etest.Shared().State, "data", "volumes"))
	return len(vs), len(ents)
}

func imageCount(t *testing.T) int {
	t.Helper()
	var ims []plugin.Image
	if err := json.Unmarshal([]byte(mustOK(t, aminate(t, "images", "list", "--output", "json"))), &ims); err != nil {
		t.Fatal(err)
	}
	return len(ims)
}

// binary is the aminate binary under test.
func binary() string { return e2etest.Binary() }

// workDir is the run's work directory, every cloud of the run under it.
func workDir() string { return e2etest.WorkDir() }

// stateDir is the shared cloud's state directory.
func stateDir() string { return e2etest.Shared().State }

// shared is the cloud of the tests that run one after another.
func shared() *cloud { return e2etest.Shared() }

// bakeryClient calls the bakery's API as a test.
type bakeryClient = e2etest.BakeryClient
