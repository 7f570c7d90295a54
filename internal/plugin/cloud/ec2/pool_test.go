package ec2_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/blockdev"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// poolCloud is a cloud with a state directory (the pool's targets).
func poolCloud(t *testing.T, s *ec2cloud.Settings, rec *ec2test.Recorder, dir string) *ec2cloud.Cloud {
	t.Helper()
	c := newCloud(t, s, rec)
	c.UseDirs(dir, dir+"/lock")
	return c
}

// bakeRequest is the volume a bake of the snapshot asks for (its size, as
// the bake's size step finds it).
func bakeRequest(t *testing.T, c *ec2cloud.Cloud, snap string) plugin.VolumeRequest {
	t.Helper()
	s, err := c.Snapshot(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	return plugin.VolumeRequest{SnapshotID: snap, SizeBytes: s.SizeBytes, Tags: plugin.Tags{owner.Purpose: owner.PurposeWork, owner.Bake: "b1", owner.Host: "x"}}
}

// Fill makes the volumes in the host's zone, tagged; a bake's CreateVolume
// takes one without calling CreateVolume and asks for a refill; the refill
// makes it up again; drain deletes them and forgets the target, after which
// a bake makes its own volume.
func TestPoolFillTakeRefillDrain(t *testing.T) {
	e := ec2test.Start(t)
	rec := &ec2test.Recorder{}
	c := poolCloud(t, nil, rec, t.TempDir())
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	snap := base.Root().SnapshotID
	made, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 2})
	if err != nil || made != 2 {
		t.Fatalf("fill: made %d, %v", made, err)
	}
	pooled := e.VolumesTagged(t, owner.Purpose, owner.PurposePool)
	if len(pooled) != 2 {
		t.Fatalf("pool volumes: %d", len(pooled))
	}

	for _, v := range pooled {
		tags := map[string]string{}
		for _, tg := range v.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if aws.ToString(v.AvailabilityZone) != e.AZ || aws.ToString(v.SnapshotId) != snap || tags[owner.Base] != e.BaseID || tags[owner.Host] != e.InstanceID {
			t.Errorf("pool volume %s: zone %s snapshot %s tags %v", aws.ToString(v.VolumeId), aws.ToString(v.AvailabilityZone), aws.ToString(v.SnapshotId), tags)
		}
	}
	if made, _ := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Target: -1}); made != 0 {
		t.Errorf("a full pool made %d more", made)
	}
	checkStatus(t, c, snap, 2, 2)

	var refills []string
	c.OnPoolTake(func(s string) { refills = append(refills, s) })
	req := bakeRequest(t, c, snap)
	creates := rec.Count("CreateVolume")
	calls := rec.Count("")
	v, err := c.CreateVolume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Count("CreateVolume") != creates {
		t.Error("the bake called CreateVolume with a pool ready")
	}
	if n := rec.Count("") - calls; n != 2 { // DescribeVolumes, CreateTags
		t.Errorf("taking a pool volume made %d calls", n)
	}
	if !owner.IsWork(v.Tags) || v.Tags[owner.Bake] != "b1" || len(e.VolumesTagged(t, owner.Bake, "b1")) != 1 {
		t.Errorf("taken volume %+v is not the bake's", v)
	}
	if len(refills) != 1 || refills[0] != snap {
		t.Errorf("refills asked: %v", refills)
	}
	checkStatus(t, c, snap, 2, 1)
	if made, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Target: -1}); err != nil || made != 1 {
		t.Errorf("refill: made %d, %v", made, err)
	}
	checkStatus(t, c, snap, 2, 2)

	n, err := c.DrainPool(ctx, "")
	if err != nil || n != 2 {
		t.Errorf("drain: %d, %v", n, err)
	}
	if ps, _ := c.PoolStatus(ctx); len(ps) != 0 || len(e.VolumesTagged(t, owner.Purpose, owner.PurposePool)) != 0 {
		t.Errorf("after drain: %+v", ps)
	}
	if len(e.VolumesTagged(t, owner.Bake, "b1")) != 1 {
		t.Error("drain deleted the bake's volume")
	}
	creates = rec.Count("CreateVolume")
	if _, err := c.CreateVolume(ctx, bakeRequest(t, c, snap)); err != nil || rec.Count("CreateVolume") != creates+1 {
		t.Errorf("with the pool drained a bake must make its volume: %v", err)
	}
}

func checkStatus(t *testing.T, c *ec2cloud.Cloud, snap string, target, ready int) {
	t.Helper()
	ps, err := c.PoolStatus(context.Background())
	if err != nil || len(ps) != 1 || ps[0].SnapshotID != snap || ps[0].Target != target || ps[0].Ready != ready {
		t.Errorf("status %+v %v, want %s target %d ready %d", ps, err, snap, target, ready)
	}
}

// A pool volume is taken only by a bake of its own snapshot, on its own
// host, of its size: another base's pool, another host's and a bigger
// request are left alone.
func TestPoolOtherBaseNeverTaken(t *testing.T) {
	e := ec2test.Start(t)
	rec := &ec2test.Recorder{}
	c := poolCloud(t, nil, rec, t.TempDir())
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	snap := base.Root().SnapshotID
	vol, _ := e.Client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(e.AZ), Size: aws.Int32(2)})
	other, _ := e.Client.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	e.Client.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: vol.VolumeId})
	otherSnap := aws.ToString(other.SnapshotId)
	if _, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: otherSnap, Base: "ami-other", Target: 1}); err != nil {
		t.Fatal(err)
	}
	// This base's pool has a target but only another host's volume.
	if _, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 0}); err != nil {
		t.Fatal(err)
	}
	foreign, _ := e.Client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(e.AZ), SnapshotId: aws.String(snap), Size: aws.Int32(2),
		VolumeType: types.VolumeTypeGp3, TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{
			{Key: aws.String(owner.Purpose), Value: aws.String(owner.PurposePool)}, {Key: aws.String(owner.Host), Value: aws.String("i-0another")}}}}})
	creates := rec.Count("CreateVolume")
	v, err := c.CreateVolume(ctx, bakeRequest(t, c, snap))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Count("CreateVolume") != creates+1 || v.SnapshotID != snap || v.ID == aws.ToString(foreign.VolumeId) {
		t.Errorf("the bake took %s (snapshot %s), not a new volume", v.ID, v.SnapshotID)
	}
	if vs := e.VolumesTagged(t, owner.Purpose, owner.PurposePool); len(vs) != 2 {
		t.Errorf("pool volumes left: %d, want the other base's and the other host's", len(vs))
	}
	// A pool of the right snapshot but a smaller size is not taken by a bigger bake.
	c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 1})
	big := bakeRequest(t, c, snap)
	big.SizeBytes += 8 << 30
	creates = rec.Count("CreateVolume")
	if v, err := c.CreateVolume(ctx, big); err != nil || rec.Count("CreateVolume") != creates+1 || v.SizeBytes != big.SizeBytes {
		t.Errorf("a bigger bake took a pool volume: %+v %v", v, err)
	}
}

// With pool_attach the volumes wait attached to this instance at devices
// the blockdevice plugin picks; a bake's volume comes attached; drain
// detaches before it deletes.
func TestPoolAttached(t *testing.T) {
	e := ec2test.Start(t)
	rec := &ec2test.Recorder{}
	s := ec2cloud.Defaults()
	s.PollInterval, s.PoolAttach = 20*time.Millisecond, true
	dir := t.TempDir()
	c := poolCloud(t, s, rec, dir)
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	snap := base.Root().SnapshotID
	bd := &blockdev.Linux{Letters: "fghijklmnop", LockDir: dir + "/lock", Attached: c, Dev: t.TempDir(), Sys: t.TempDir()}
	if _, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 2}); err == nil {
		t.Error("pool_attach without a device allocator: no error")
	}
	if vs := e.VolumesTagged(t, owner.Purpose, owner.PurposePool); len(vs) != 0 {
		t.Errorf("a failed fill left %d volumes", len(vs))
	}
	if made, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 2, Devices: bd}); err != nil || made != 2 {
		t.Fatalf("fill: %d %v", made, err)
	}
	devs := map[string]bool{}
	for _, v := range e.VolumesTagged(t, owner.Purpose, owner.PurposePool) {
		if len(v.Attachments) != 1 || aws.ToString(v.Attachments[0].InstanceId) != e.InstanceID {
			t.Fatalf("pool volume not attached here: %+v", v.Attachments)
		}
		devs[aws.ToString(v.Attachments[0].Device)] = true
	}
	if len(devs) != 2 {
		t.Errorf("devices %v", devs)
	}
	if ps, _ := c.PoolStatus(ctx); len(ps) != 1 || ps[0].Attached != 2 || ps[0].Ready != 2 {
		t.Errorf("status %+v", ps)
	}
	attaches := rec.Count("AttachVolume")
	v, err := c.CreateVolume(ctx, bakeRequest(t, c, snap))
	if err != nil || v.AttachedTo != e.InstanceID || !devs[v.Device] || rec.Count("AttachVolume") != attaches {
		t.Errorf("taken %+v %v", v, err)
	}
	if n, err := c.DrainPool(ctx, snap); err != nil || n != 1 {
		t.Errorf("drain %d %v", n, err)
	}
	if r, ok := rec.Last("DetachVolume"); !ok || !strings.Contains(r.Form, "InstanceId="+e.InstanceID) {
		t.Errorf("drain did not detach: %+v", r)
	}
	if vs := e.VolumesTagged(t, owner.Purpose, owner.PurposePool); len(vs) != 0 {
		t.Errorf("left after drain: %d", len(vs))
	}
	c.DetachVolume(ctx, v.ID)
	c.DeleteVolume(ctx, v.ID)
}

// creatingTransport makes moto's answers show one volume as still creating.
type creatingTransport struct{ id string }

func (c *creatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	b := new(strings.Builder)
	if _, err := ioCopy(b, resp); err != nil {
		return nil, err
	}
	body := b.String()
	if i := strings.Index(body, "<volumeId>"+c.id+"</volumeId>"); i >= 0 && strings.Contains(body, "<DescribeVolumesResponse") {
		body = body[:i] + strings.Replace(body[i:], "<status>available</status>", "<status>creating</status>", 1)
	}
	resp.Body, resp.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// gc removes the pool volumes of hosts that are gone (no such instance, or
// terminated) and this host's stuck in creating; a live host's are kept.
func TestPoolGC(t *testing.T) {
	e := ec2test.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	base, _ := e.Client.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{e.BaseID}})
	snap := aws.ToString(base.Images[0].BlockDeviceMappings[0].Ebs.SnapshotId)
	run := func() string {
		out, err := e.Client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(e.BaseID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			Placement: &types.Placement{AvailabilityZone: aws.String(e.AZ)}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Instances[0].InstanceId)
	}
	live, dead := run(), run()
	if _, err := e.Client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{dead}}); err != nil {
		t.Fatal(err)
	}
	mk := func(host string) string {
		out, err := e.Client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(e.AZ), SnapshotId: aws.String(snap),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{
				{Key: aws.String(owner.Purpose), Value: aws.String(owner.PurposePool)}, {Key: aws.String(owner.Host), Value: aws.String(host)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.VolumeId)
	}
	ofLive, ofDead, ofNone, stuck, mine := mk(live), mk(dead), mk("i-0123456789abcdef0"), mk(e.InstanceID), mk(e.InstanceID)
	s := ec2cloud.Defaults()
	s.WaitTimeout = time.Nanosecond // every creating volume is stuck
	rt := &creatingTransport{id: stuck}
	c := poolCloud(t, s, &ec2test.Recorder{Next: rt}, dir)
	p, err := c.PlanGC(ctx, dir+"/lock")
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]string{}
	for _, it := range p.Items {
		planned[it.ID] = it.Reason
	}
	for _, id := range []string{ofDead, ofNone, stuck} {
		if planned[id] == "" {
			t.Errorf("gc does not plan %s: %v", id, planned)
		}
	}
	if planned[ofLive] != "" || planned[mine] != "" || len(planned) != 3 {
		t.Errorf("gc plans too much: %v", planned)
	}
	r, err := p.Execute(ctx)
	if err != nil || len(r.IDs(gcreport.Volume)) != 3 {
		t.Fatalf("gc: %+v %v", r, err)
	}
	left := map[string]bool{}
	for _, v := range e.VolumesTagged(t, owner.Purpose, owner.PurposePool) {
		left[aws.ToString(v.VolumeId)] = true
	}
	if len(left) != 2 || !left[ofLive] || !left[mine] {
		t.Errorf("left after gc: %v", left)
	}
}

func ioCopy(b *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(b, resp.Body)
}

// Two bakes on this host at once with one pool volume: one takes it, the
// other makes its own; no volume is given to both.
func TestPoolTakeRace(t *testing.T) {
	e := ec2test.Start(t)
	rec := &ec2test.Recorder{}
	c := poolCloud(t, nil, rec, t.TempDir())
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	snap := base.Root().SnapshotID
	if _, err := c.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 1}); err != nil {
		t.Fatal(err)
	}
	req := bakeRequest(t, c, snap)
	creates := rec.Count("CreateVolume")
	got := make(chan string, 2)
	for range 2 {
		go func() {
			v, err := c.CreateVolume(ctx, req)
			if err != nil {
				t.Error(err)
				got <- ""
				return
			}
			got <- v.ID
		}()
	}
	a, b := <-got, <-got
	if a == b || rec.Count("CreateVolume") != creates+1 {
		t.Errorf("volumes %s and %s, %d made", a, b, rec.Count("CreateVolume")-creates)
	}
}
