package ec2_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

func regional(e *ec2test.Env, region string) *ec2.Client {
	return ec2.New(e.Client.Options(), func(o *ec2.Options) { o.Region = region })
}

func imageIn(ctx context.Context, e *ec2test.Env, region, id string) bool {
	out, err := regional(e, region).DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
	return err == nil && len(out.Images) == 1
}

// A bake's copies carry owner.Copying while they are made, and lose it when
// the distribution succeeds. gc removes the copies of a bake killed while
// copying (still marked, its bake not running), in whatever region; a
// finished bake's copies and a running bake's are left.
func TestGCCopiesOfAKilledBake(t *testing.T) {
	e := ec2test.Start(t)
	c := newCloud(t, nil, nil)
	ctx := context.Background()
	lockDir := t.TempDir()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "dist", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: base.Root().SnapshotID}}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Distribute(ctx, im, plugin.Distribution{CopyTo: []string{"us-west-2"}, Job: "bake-done"})
	if err != nil {
		t.Fatal(err)
	}
	// What a kill leaves: copies made and marked, never unmarked.
	copyOf := func(region, job string) string {
		out, err := regional(e, region).CopyImage(ctx, &ec2.CopyImageInput{SourceImageId: aws.String(im.ID), SourceRegion: aws.String(e.Region), Name: aws.String("dist")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := regional(e, region).CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(out.ImageId)},
			Tags: []types.Tag{{Key: aws.String(owner.Copying), Value: aws.String(job)}, {Key: aws.String(owner.CopyHost), Value: aws.String(e.InstanceID)}}}); err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ImageId)
	}
	dead := copyOf("eu-west-1", "bake-dead")
	live := copyOf("ap-southeast-2", "bake-live")
	l, err := flock.TryExclusive(filepath.Join(lockDir, "bake-live.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	p, err := c.PlanGC(ctx, lockDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Planned().IDs(gcreport.Copy); !slices.Equal(got, []string{"eu-west-1/" + dead}) {
		t.Fatalf("planned copies %v, want eu-west-1/%s", got, dead)
	}
	if len(p.Running) != 1 || p.Running[0].ID != "ap-southeast-2/"+live {
		t.Errorf("running %+v", p.Running)
	}
	if _, err := os.Stat(filepath.Join(lockDir, "bake-dead.lock")); err == nil {
		t.Error("planning made a lock file for the dead bake")
	}
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.IDs(gcreport.Copy); len(got) != 1 {
		t.Errorf("removed %+v skipped %+v", r.Removed, r.Skipped)
	}
	if imageIn(ctx, e, "eu-west-1", dead) {
		t.Error("the killed bake's copy is left")
	}
	if !imageIn(ctx, e, "ap-southeast-2", live) || !imageIn(ctx, e, "us-west-2", done[1].ImageID) || !imageIn(ctx, e, e.Region, im.ID) {
		t.Error("gc removed a copy it must leave")
	}
}

// The EBS snapshot of a push killed before it registered its image (tagged
// with the push and this machine) is removed, and so is the snapshot of a
// bake on this host killed before it registered (bake and host tags); a
// running push's, another machine's and one an image uses are left.
func TestGCSnapshotsOfAKilledPushOrBake(t *testing.T) {
	e := ec2test.Start(t)
	c := newCloud(t, nil, nil)
	ctx := context.Background()
	lockDir := t.TempDir()
	host, _ := os.Hostname()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	vol, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: base.Root().SnapshotID, SizeBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	pushed := func(push, on string) string {
		s, err := c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: vol.ID, Tags: plugin.Tags{owner.Push: push, owner.PushHost: on}})
		if err != nil {
			t.Fatal(err)
		}
		return s.ID
	}
	dead, live, other := pushed("push-dead", host), pushed("push-live", host), pushed("push-x", "another-machine")
	baked, err := c.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: vol.ID, Tags: plugin.Tags{owner.Bake: "bake-dead", owner.Host: e.InstanceID}})
	if err != nil {
		t.Fatal(err)
	}
	// Killed after it registered its image: complete, kept. (moto's
	// RegisterImage ignores the mappings given and maps a snapshot of its
	// own: that one is tagged as the push's.)
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "pushed", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: base.Root().SnapshotID}}})
	if err != nil {
		t.Fatal(err)
	}
	registered := im.Root().SnapshotID
	if err := c.CreateTags(ctx, registered, plugin.Tags{owner.Push: "push-done", owner.PushHost: host}); err != nil {
		t.Fatal(err)
	}
	l, err := flock.TryExclusive(filepath.Join(lockDir, "push-live.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	p, err := c.PlanGC(ctx, lockDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Planned().IDs(gcreport.Snapshot); !slices.Equal(got, []string{baked.ID, dead}) {
		t.Fatalf("planned %v, want %s then %s", got, baked.ID, dead)
	}
	if _, err := p.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{dead: false, baked.ID: false, live: true, other: true, registered: true} {
		if _, err := c.Snapshot(ctx, id); (err == nil) != want {
			t.Errorf("snapshot %s: %v, want there %v", id, err, want)
		}
	}
}
