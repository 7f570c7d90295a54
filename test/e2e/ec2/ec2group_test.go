package ec2

import (
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// TestEC2 runs the tests against EC2's API (moto and the metadata mock)
// one after another, beside this package's other tests: they use the
// package's shared local cloud, which no other test touches, and each
// starts its own moto, whose address in-process bakes find in the
// process's environment (so only one of them may run at a time).
func TestEC2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Bake", ec2Bake},
		{"BakeAttested", ec2BakeAttested},
		{"KilledBakeAndGC", ec2KilledBakeAndGC},
		{"PushLocalBake", ec2PushLocalBake},
		{"BakeS3", ec2BakeS3},
		{"PushS3", ec2PushS3},
		{"PoolBake", ec2PoolBake},
		{"PoolCommands", ec2PoolCommands},
		{"PoolRefillAfterBake", ec2PoolRefillAfterBake},
		{"CrashDuringPush", ec2CrashDuringPush},
		{"PushBootMode", ec2PushBootMode},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// startEC2 starts moto and the metadata mock for one subtest of TestEC2,
// and checks that it leaves no mount or loop device in the shared cloud
// (the parallel tests' clouds are their own business).
func startEC2(t *testing.T) *ec2test.Env {
	t.Helper()
	testutil.CheckNoLeaks(t, shared().State)
	return ec2test.StartProcessWide(t)
}
