package ec2

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// A push killed after sending its blocks, and after EC2 completed its
// snapshot but before it registered the AMI: `gc --cloud ec2` removes the
// snapshot (tagged with the push and this machine), local gc its lock, and
// the local store stays whole. Nothing else of the push is left.
func ec2CrashDuringPush(t *testing.T) {
	e := startEC2(t)
	raw := filepath.Join(t.TempDir(), "tiny.img")
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	tiny := mustOK(t, aminate(t, "images", "import", "crash-push-tiny", raw))
	defer aminate(t, "images", "rm", tiny)
	ctx := context.Background()
	pushed := func() []string {
		out, err := e.Client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{owner.Push}}}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range out.Snapshots {
			ids = append(ids, aws.ToString(s.SnapshotId)+" "+string(s.State))
		}
		return ids
	}
	for _, point := range []string{"push-blocks", "push-snapshot"} {
		shared().Crash(t, point, e.Vars, "push", "--allow-no-loader", tiny)
		if left := pushed(); len(left) != 1 {
			t.Fatalf("after a crash at %s EC2 has pushed snapshots %v, want the killed push's", point, left)
		}
		mustOK(t, aminateEnv(t, e.Vars, "gc", "--cloud", "ec2"))
		if left := pushed(); len(left) != 0 {
			t.Errorf("after a crash at %s and gc --cloud ec2: %v left", point, left)
		}
		if ims := imagesNamed(ctx, t, e, "crash-push-tiny"); ims != 0 {
			t.Errorf("after a crash at %s: %d AMIs registered", point, ims)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mustOK(t, aminate(t, "gc"))
		locks, _ := filepath.Glob(filepath.Join(stateDir(), "lock", "push-*.lock"))
		if len(locks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gc left the killed pushes' locks %v", locks)
		}
		time.Sleep(300 * time.Millisecond)
	}
	mustOK(t, aminate(t, "fsck"))
}

func imagesNamed(ctx context.Context, t *testing.T, e *ec2test.Env, name string) int {
	out, err := e.Client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{name}}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Images)
}
