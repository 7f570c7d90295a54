package ec2_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

func newCloud(t *testing.T, s *ec2cloud.Settings, rec *ec2test.Recorder) *ec2cloud.Cloud {
	t.Helper()
	if s == nil {
		s = ec2cloud.Defaults()
		s.PollInterval = 50 * time.Millisecond
	}
	var opts []ec2cloud.Option
	if rec != nil {
		opts = append(opts, ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: rec})))
	}
	c, err := ec2cloud.New(context.Background(), s, "", nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHostAndRegionFromIMDSv2(t *testing.T) {
	e := ec2test.Start(t)
	os.Unsetenv("AWS_REGION") // the region must then come from instance metadata
	c := newCloud(t, nil, nil)
	h, err := c.Host(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.InstanceID != e.InstanceID || h.AvailabilityZone != e.AZ || h.Region != e.Region || c.Region() != e.Region {
		t.Errorf("host %+v region %s", h, c.Region())
	}
	if _, err := ec2cloud.New(context.Background(), ec2cloud.Defaults(), "us-east-l", nil); err == nil || !strings.Contains(err.Error(), "not a region name") {
		t.Errorf("region typo: %v", err)
	}
}

func TestImageLookup(t *testing.T) {
	e := ec2test.Start(t)
	c := newCloud(t, nil, nil)
	ctx := context.Background()
	im, err := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	if err != nil || im.Name != e.BaseName || im.Root() == nil {
		t.Fatalf("by id: %+v %v", im, err)
	}
	if im, err := c.Image(ctx, plugin.ImageQuery{Name: e.BaseName}); err != nil || im.ID != e.BaseID {
		t.Errorf("by name: %+v %v", im, err)
	}
	_, err = c.Image(ctx, plugin.ImageQuery{ID: "ami-00000000000000000"})
	if !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("missing id: %v", err)
	}
	_, err = c.Image(ctx, plugin.ImageQuery{Name: "no-such-image"})
	if !errors.Is(err, plugin.ErrNotFound) || !strings.Contains(err.Error(), "no-such-image") {
		t.Errorf("missing name: %v", err)
	}
}

// The volume life cycle as a bake drives it: created in the host's zone
// with tags, attached to this instance, detached naming the instance, deleted.
func TestVolumeLifecycle(t *testing.T) {
	e := ec2test.Start(t)
	rec := &ec2test.Recorder{}
	c := newCloud(t, nil, rec)
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: base.Root().SnapshotID, SizeBytes: 20 << 30, Tags: owner.Work("b1", "")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := rec.Last("CreateVolume")
	form, _ := url.ParseQuery(req.Form)
	if form.Get("AvailabilityZone") != e.AZ || form.Get("VolumeType") != "gp3" || form.Get("Size") != "20" || form.Get("TagSpecification.1.Tag.1.Key") != owner.Bake {
		t.Errorf("CreateVolume request: %v", form)
	}
	if _, err := c.AttachVolume(ctx, v.ID, "/dev/sdf"); err != nil {
		t.Fatal(err)
	}
	out, _ := e.Client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{v.ID}})
	if a := out.Volumes[0].Attachments; len(a) != 1 || aws.ToString(a[0].InstanceId) != e.InstanceID || aws.ToString(a[0].Device) != "/dev/sdf" {
		t.Errorf("attachment %+v", a)
	}
	devs, _ := c.AttachedDevices(ctx)
	if !strings.Contains(strings.Join(devs, ","), "/dev/sdf") {
		t.Errorf("attached devices %v", devs)
	}
	if err := c.DetachVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	req, _ = rec.Last("DetachVolume")
	if form, _ := url.ParseQuery(req.Form); form.Get("InstanceId") != e.InstanceID {
		t.Errorf("DetachVolume must name the instance: %v", form)
	}
	if err := c.DeleteVolume(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	if left := e.VolumesTagged(t, owner.Bake, "b1"); len(left) != 0 {
		t.Errorf("volume left: %+v", left)
	}
}

// moto ignores most of RegisterImage: check the request itself.
func TestRegisterImageRequest(t *testing.T) {
	in := ec2cloud.RegisterInput(plugin.ImageRequest{
		Name: "app-1.0-1-x86_64-s-ebs", Description: "d", Architecture: "arm64", VirtualizationType: "hvm", RootDeviceName: "/dev/xvda",
		BlockDevices: []plugin.BlockDeviceMapping{
			{DeviceName: "/dev/xvda", SnapshotID: "snap-1", VolumeSizeGiB: 10, VolumeType: "gp3", DeleteOnTermination: true},
			{DeviceName: "/dev/sdb", VirtualName: "ephemeral0"},
		},
		EnaSupport: true, SriovNetSupport: true, BootMode: "uefi", TPMSupport: true, IMDSv2Required: true,
		KernelID: "aki-1", RamdiskID: "ari-1",
	})
	if aws.ToString(in.RootDeviceName) != "/dev/xvda" || in.Architecture != types.ArchitectureValuesArm64 || !aws.ToBool(in.EnaSupport) ||
		aws.ToString(in.SriovNetSupport) != "simple" || in.BootMode != types.BootModeValuesUefi || in.TpmSupport != types.TpmSupportValuesV20 ||
		in.ImdsSupport != types.ImdsSupportValuesV20 || in.KernelId != nil {
		t.Errorf("register input %+v", in)
	}
	root := in.BlockDeviceMappings[0]
	if aws.ToString(root.Ebs.SnapshotId) != "snap-1" || aws.ToInt32(root.Ebs.VolumeSize) != 10 || root.Ebs.VolumeType != types.VolumeTypeGp3 || !aws.ToBool(root.Ebs.DeleteOnTermination) {
		t.Errorf("root mapping %+v", root.Ebs)
	}
	if eph := in.BlockDeviceMappings[1]; aws.ToString(eph.VirtualName) != "ephemeral0" || eph.Ebs != nil {
		t.Errorf("ephemeral mapping %+v", eph)
	}
	pv := ec2cloud.RegisterInput(plugin.ImageRequest{Name: "pv", VirtualizationType: "paravirtual", KernelID: "aki-1", RamdiskID: "ari-1", EnaSupport: true})
	if aws.ToString(pv.KernelId) != "aki-1" || aws.ToString(pv.RamdiskId) != "ari-1" || pv.EnaSupport != nil {
		t.Errorf("paravirtual keeps kernel and ramdisk, no ENA: %+v", pv)
	}

	// And over the wire, through the SDK, to moto.
	e := ec2test.Start(t)
	rec := &ec2test.Recorder{}
	c := newCloud(t, nil, rec)
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "wire", RootDeviceName: "/dev/sda1", Architecture: "x86_64", VirtualizationType: "hvm",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: base.Root().SnapshotID, VolumeSizeGiB: 8, VolumeType: "gp3", DeleteOnTermination: true}},
		EnaSupport:   true, BootMode: "uefi-preferred", TPMSupport: true, IMDSv2Required: true, Tags: plugin.Tags{"creator": "me"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := rec.Last("RegisterImage")
	form, _ := url.ParseQuery(req.Form)
	for k, v := range map[string]string{"EnaSupport": "true", "BootMode": "uefi-preferred", "TpmSupport": "v2.0", "ImdsSupport": "v2.0",
		"BlockDeviceMapping.1.DeviceName": "/dev/sda1", "BlockDeviceMapping.1.Ebs.VolumeType": "gp3", "BlockDeviceMapping.1.Ebs.VolumeSize": "8",
		"BlockDeviceMapping.1.Ebs.SnapshotId": base.Root().SnapshotID, "RootDeviceName": "/dev/sda1", "VirtualizationType": "hvm"} {
		if form.Get(k) != v {
			t.Errorf("RegisterImage %s = %q, want %q", k, form.Get(k), v)
		}
	}
	if im.Tags["creator"] != "me" {
		t.Errorf("tags %v", im.Tags)
	}
	// A Graviton image: arm64 and uefi on the wire.
	if _, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "wire-arm64", RootDeviceName: "/dev/sda1", Architecture: "arm64", VirtualizationType: "hvm",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: base.Root().SnapshotID}}, EnaSupport: true, BootMode: "uefi"}); err != nil {
		t.Fatal(err)
	}
	req, _ = rec.Last("RegisterImage")
	form, _ = url.ParseQuery(req.Form)
	if form.Get("Architecture") != "arm64" || form.Get("BootMode") != "uefi" {
		t.Errorf("RegisterImage Architecture=%q BootMode=%q, want arm64, uefi", form.Get("Architecture"), form.Get("BootMode"))
	}
	// The same name again: a clear error (moto itself would accept it).
	_, err = c.RegisterImage(ctx, plugin.ImageRequest{Name: "wire", RootDeviceName: "/dev/sda1"})
	if !errors.Is(err, plugin.ErrExists) {
		t.Errorf("duplicate name: %v", err)
	}
	s := ec2cloud.Defaults()
	s.DuplicateNames, s.PollInterval = "number", 50*time.Millisecond
	im2, err := newCloud(t, s, nil).RegisterImage(ctx, plugin.ImageRequest{Name: "wire", RootDeviceName: "/dev/sda1"})
	if err != nil || im2.Name != "wire-1" {
		t.Errorf("numbered retry: %v %v", im2, err)
	}
}

// Throttling is retried with backoff by the SDK's retryer; permission
// errors say which permission is missing; a wait that never ends times out.
func TestRetriesErrorsAndTimeouts(t *testing.T) {
	e := ec2test.Start(t)
	ctx := context.Background()
	rec := &ec2test.Recorder{Inject: func(action string, n int) *http.Response {
		if action == "DescribeImages" && n <= 2 {
			return ec2test.ErrorResponse(503, "RequestLimitExceeded", "Request limit exceeded.")
		}
		if action == "CreateVolume" {
			return ec2test.ErrorResponse(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
		}
		return nil
	}}
	c := newCloud(t, nil, rec)
	if _, err := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID}); err != nil {
		t.Fatalf("throttled call not retried: %v", err)
	}
	if n := rec.Count("DescribeImages"); n != 3 {
		t.Errorf("DescribeImages sent %d times, want 3 (two throttled)", n)
	}
	_, err := c.CreateVolume(ctx, plugin.VolumeRequest{SizeBytes: 1 << 30})
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "ec2:CreateVolume") {
		t.Errorf("permission error: %v", err)
	}

	// A snapshot that stays pending.
	s := ec2cloud.Defaults()
	s.WaitTimeout, s.PollInterval = time.Second, 100*time.Millisecond
	slow := &ec2test.Recorder{}
	sc := newCloud(t, s, slow)
	base, _ := sc.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	v, err := sc.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: base.Root().SnapshotID, SizeBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.DeleteVolume(ctx, v.ID)
	slow.Inject = func(action string, n int) *http.Response {
		if action == "DescribeSnapshots" {
			body := `<DescribeSnapshotsResponse><requestId>r</requestId><snapshotSet><item><snapshotId>snap-x</snapshotId><status>pending</status><progress>42%</progress></item></snapshotSet></DescribeSnapshotsResponse>`
			return ec2test.XMLResponse(body)
		}
		return nil
	}
	_, err = sc.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: v.ID})
	if err == nil || !strings.Contains(err.Error(), "gave up after 1s") {
		t.Errorf("pending snapshot: %v", err)
	}
}

func TestDistribute(t *testing.T) {
	e := ec2test.Start(t)
	// moto has no EnableImageDeprecation: answer it here, and check the request.
	rec := &ec2test.Recorder{Inject: func(action string, n int) *http.Response {
		if action == "EnableImageDeprecation" {
			return ec2test.XMLResponse(`<EnableImageDeprecationResponse><requestId>r</requestId><return>true</return></EnableImageDeprecationResponse>`)
		}
		return nil
	}}
	c := newCloud(t, nil, rec)
	ctx := context.Background()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	im, err := c.RegisterImage(ctx, plugin.ImageRequest{Name: "dist", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: base.Root().SnapshotID}}, Tags: plugin.Tags{"appversion": "x-1-1"}})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	copies, err := c.Distribute(ctx, im, plugin.Distribution{CopyTo: []string{"us-west-2", "eu-west-1"}, ShareWith: []string{"111122223333"},
		OrgARNs: []string{"arn:aws:organizations::123456789012:organization/o-abc"}, DeprecateAt: when,
		KMSKeys: map[string]string{"eu-west-1": "arn:aws:kms:eu-west-1:123456789012:key/k"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(copies) != 3 || copies[0].ImageID != im.ID || copies[1].Region != "eu-west-1" || copies[2].Region != "us-west-2" {
		t.Fatalf("copies %+v", copies)
	}
	var kms, share, deprecate int
	for _, r := range rec.Requests {
		form, _ := url.ParseQuery(r.Form)
		switch r.Action {
		case "CopyImage":
			if form.Get("KmsKeyId") != "" {
				kms++
			}
		case "ModifyImageAttribute":
			if form.Get("LaunchPermission.Add.1.UserId") == "111122223333" && form.Get("LaunchPermission.Add.2.OrganizationArn") != "" {
				share++
			}
		case "EnableImageDeprecation":
			if strings.HasPrefix(form.Get("DeprecateAt"), "2027-01-31T00:00:00") {
				deprecate++
			}
		}
	}
	if kms != 1 || share != 3 || deprecate != 3 || rec.Count("ModifySnapshotAttribute") < 1 {
		t.Errorf("kms %d share %d deprecate %d snapshot shares %d", kms, share, deprecate, rec.Count("ModifySnapshotAttribute"))
	}
}

// gc removes what bakes that are gone left on this host, and leaves a
// running bake's volume alone.
func TestGC(t *testing.T) {
	e := ec2test.Start(t)
	c := newCloud(t, nil, nil)
	ctx := context.Background()
	lockDir := t.TempDir()
	base, _ := c.Image(ctx, plugin.ImageQuery{ID: e.BaseID})
	mk := func(bake string) *plugin.Volume {
		v, err := c.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: base.Root().SnapshotID, SizeBytes: 1 << 30,
			Tags: plugin.Tags{owner.Purpose: owner.PurposeWork, owner.Bake: bake, owner.Host: e.InstanceID}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	dead, live := mk("bake-dead"), mk("bake-live")
	if _, err := c.AttachVolume(ctx, dead.ID, "/dev/sdg"); err != nil {
		t.Fatal(err)
	}
	l, err := flock.TryExclusive(filepath.Join(lockDir, "bake-live.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	gone := mk("bake-gone")
	p, err := c.PlanGC(ctx, lockDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gcreport.Run(ctx, p, true)
	if vs := r.IDs(gcreport.Volume); err != nil || len(vs) != 2 || len(r.Running) != 1 || r.Running[0].ID != live.ID {
		t.Fatalf("dry run %+v %v", r, err)
	}
	// Between plan and execution, a bake takes the gone bake's volume.
	if err := c.CreateTags(ctx, gone.ID, plugin.Tags{owner.Bake: "bake-live"}); err != nil {
		t.Fatal(err)
	}
	if r, err = p.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	if vs := r.IDs(gcreport.Volume); len(vs) != 1 || vs[0] != dead.ID || len(r.Skipped) != 1 || r.Skipped[0].ID != gone.ID {
		t.Errorf("removed %v, skipped %+v", vs, r.Skipped)
	}
	left := e.VolumesTagged(t, owner.Purpose, owner.PurposeWork)
	if len(left) != 2 {
		t.Errorf("after gc: %+v", left)
	}
	for _, v := range left {
		if id := aws.ToString(v.VolumeId); id != live.ID && id != gone.ID {
			t.Errorf("after gc: %s is left", id)
		}
	}
}
