// Package isolated runs, end to end and as root, the tests that each need
// a local cloud of their own and run all at once: a bakery cluster's
// failover, recovery from crashes at every durability point, the
// dashboard in a browser, a full disk, and the RedHat path (rpm and dnf).
// It is a package of its own so that go test runs it beside test/e2e's
// tests, which run one after another, rather than after them.
package isolated

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

const baseName = e2etest.BaseName

var (
	isolated = e2etest.Isolated
	mustOK   = e2etest.MustOK
)

// binary is the aminate binary under test.
func binary() string { return e2etest.Binary() }
