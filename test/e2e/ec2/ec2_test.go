package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/bootdisk"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/blockdev"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/partition"
	"github.com/aminator-go/aminator/internal/sys/sparse"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"

	_ "github.com/aminator-go/aminator/internal/plugin/builtin"
)

// loopBlockDevice is the one stand-in of the EC2 tests: moto reports a
// volume attached at /dev/sdX, but no disk appears on this host, so Locate
// makes a loop device from the Debian base image's data instead. Device
// names are still allocated by the real plugin, under its flocks.
type loopBlockDevice struct {
	*blockdev.Linux
	image, dir string
	mu         sync.Mutex
	devs       map[string]*loop.Device // by device name
	files      map[string]string       // volume id -> its data file
	took       time.Duration           // spent standing in (copying the base's data)
	// fullSize, when set, makes each device as large as its volume (as
	// an EBS volume's is), the data file padded with zeros.
	fullSize *ec2.Client
}

func (l *loopBlockDevice) Allocate(ctx context.Context, name string) (plugin.Slot, error) {
	s, err := l.Linux.Allocate(ctx, name)
	if err != nil {
		return s, err
	}
	release := s.Release
	s.Release = func() error {
		l.mu.Lock()
		d := l.devs[s.Name]
		delete(l.devs, s.Name)
		l.mu.Unlock()
		d.Detach()
		return release()
	}
	return s, nil
}

func (l *loopBlockDevice) Locate(ctx context.Context, a plugin.Attachment) (string, error) {
	start := time.Now()
	defer func() { l.took += time.Since(start) }()
	file := filepath.Join(l.dir, a.VolumeID+".img")
	if _, err := sparse.CopyFile(ctx, file, l.image); err != nil {
		return "", err
	}
	if l.fullSize != nil {
		v, err := l.fullSize.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{a.VolumeID}})
		if err != nil || len(v.Volumes) != 1 {
			return "", fmt.Errorf("size of volume %s: %v", a.VolumeID, err)
		}
		if err := os.Truncate(file, int64(aws.ToInt32(v.Volumes[0].Size))<<30); err != nil {
			return "", err
		}
	}
	d, err := loop.Attach(ctx, file, loop.Options{})
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	l.devs[a.Device] = d
	l.files[a.VolumeID] = file
	l.mu.Unlock()
	return d.Path, nil
}

// The full bake against EC2's API (moto) and instance metadata (IMDSv2
// mock), in process: every plugin is the real one but for Locate.
func ec2Bake(t *testing.T) {
	e := startEC2(t)
	dir, err := os.MkdirTemp(workDir(), "ec2-")
	if err != nil {
		t.Fatal(err)
	}
	rec := &ec2test.Recorder{Inject: func(action string, n int) *http.Response {
		if action == "EnableImageDeprecation" { // not in moto
			return ec2test.XMLResponse(`<EnableImageDeprecationResponse><requestId>r</requestId><return>true</return></EnableImageDeprecationResponse>`)
		}
		return nil
	}}
	s := ec2cloud.Defaults()
	s.PollInterval = 20 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	cloud, err := ec2cloud.New(ctx, s, "", log, ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: rec})))
	if err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, "lock")
	bd := &loopBlockDevice{Linux: &blockdev.Linux{Letters: "fghijklmnop", LockDir: lockDir, Attached: cloud, Dev: "/dev", Sys: "/sys"},
		image: ec2StandIn(t, e, true), dir: dir, devs: map[string]*loop.Device{}, files: map[string]string{}}
	deps := plugin.Deps{Cloud: cloud, BlockDevice: bd, Logger: log, StateDir: dir, LockDir: lockDir}
	env := &bake.Environment{Name: "ec2_apt_linux", Cloud: cloud, StateDir: dir,
		Volume:      testutil.NewPlugin[plugin.Volumes](t, plugin.KindVolume, "linux", nil, deps),
		Distro:      testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", debian.Defaults(), deps),
		Provisioner: testutil.NewPlugin[plugin.Provisioner](t, plugin.KindProvisioner, "apt", nil, deps),
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, deps),
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-ec2", Version: "2.0-3", Files: map[string]string{"/opt/ec2": "on ec2\n"}})
	req := bake.Request{Package: deb, BaseID: e.BaseID, Suffix: "ec2", Creator: "ci", VMType: "hvm", ENA: true, BootMode: "uefi",
		IMDSv2Required: true, Tags: map[string]string{"team": "core"},
		Distribution: plugin.Distribution{CopyTo: []string{"us-west-2"}, ShareWith: []string{"111122223333"}, DeprecateAt: time.Now().Add(24 * time.Hour)}}
	start := time.Now()
	res, err := bake.Run(ctx, env, req, log)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	im := res.Image
	if im.Name != "aminator-ec2-2.0-3-x86_64-ec2-ebs" || im.Tags["appversion"] != "aminator-ec2-2.0-3" || im.Tags["base_ami_id"] != e.BaseID ||
		im.Tags["base_ami_version"] != "base-1.0-1" || im.Tags["team"] != "core" || im.Tags["creator"] != "ci" {
		t.Errorf("image %+v", im)
	}
	if len(res.Copies) != 2 || res.Copies[1].Region != "us-west-2" {
		t.Errorf("copies %+v", res.Copies)
	}
	west := ec2.New(ec2.Options{Region: "us-west-2", BaseEndpoint: aws.String(e.MotoURL), Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if out, err := west.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{res.Copies[1].ImageID}}); err != nil || len(out.Images) != 1 {
		t.Errorf("copy in us-west-2: %v", err)
	}
	// No volume is left in EC2, and the snapshot carries the bake's tags.
	if vols := e.VolumesTagged(t, owner.Purpose, owner.PurposeWork); len(vols) != 0 {
		t.Errorf("volumes left: %d", len(vols))
	}
	if snaps := e.SnapshotsTagged(t, owner.Bake, res.BakeID); len(snaps) != 1 {
		t.Errorf("snapshots of the bake: %d", len(snaps))
	}
	// The request carried what moto drops.
	if r, ok := rec.Last("RegisterImage"); !ok || formValue(r, "BootMode") != "uefi" || !strings.Contains(r.Form, "ImdsSupport=v2.0") || !strings.Contains(r.Form, "EnaSupport=true") {
		t.Errorf("RegisterImage request: %+v", r)
	}
	if im.Tags["boot"] != "bios+uefi" { // the loaders the disk holds
		t.Errorf("boot tag %q", im.Tags["boot"])
	}
	// The package went onto the volume's data.
	for _, f := range bd.files {
		inspectFile(t, f, func(root string) {
			if got := readFile(t, filepath.Join(root, "opt/ec2")); got != "on ec2\n" {
				t.Errorf("/opt/ec2 = %q", got)
			}
		})
	}

	counts := map[string]int{}
	for _, r := range rec.Requests {
		a := r.Action
		if a == "" {
			a = "IMDS"
		}
		counts[a]++
	}
	var keys []string
	for k := range counts {
		keys = append(keys, fmt.Sprintf("%s %d", k, counts[k]))
	}
	sort.Strings(keys)
	var waits time.Duration
	for _, tm := range res.Timings {
		if tm.Stage == "provision" {
			waits = tm.Duration
		}
	}
	t.Logf("API calls for one bake with a copy, a share and a deprecation: %d (%s); bake took %s: %s waiting for moto, %s provisioning, %s the test's stand-in for the disk, %s the tool's own",
		rec.Count(""), strings.Join(keys, ", "), took.Round(time.Millisecond), rec.Elapsed.Round(time.Millisecond), waits.Round(time.Millisecond),
		bd.took.Round(time.Millisecond), (took - rec.Elapsed - waits - bd.took).Round(time.Millisecond))

	// An external pool's volume (-V) at a given device: baked on, detached, not deleted.
	ext, err := e.Client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(e.AZ), Size: aws.Int32(20),
		SnapshotId: aws.String(mustImage(t, cloud, e.BaseID).Root().SnapshotID)})
	if err != nil {
		t.Fatal(err)
	}
	extID := aws.ToString(ext.VolumeId)
	res2, err := bake.Run(ctx, env, bake.Request{Package: deb, BaseID: e.BaseID, Suffix: "ext", Creator: "ci", VMType: "hvm",
		VolumeID: extID, BlockDevice: "/dev/sdk"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rec.Last("AttachVolume"); !strings.Contains(r.Form, "Device=%2Fdev%2Fsdk") {
		t.Errorf("not attached at the given device: %s", r.Form)
	}
	if rec.Count("DeleteVolume") != 1 { // only the first bake's own volume
		t.Errorf("the external volume was deleted")
	}
	if v, err := e.Client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{extID}}); err != nil || len(v.Volumes[0].Attachments) != 0 {
		t.Errorf("the external volume is gone or still attached: %v", err)
	}
	if res2.Image == nil || res2.Image.Name != "aminator-ec2-2.0-3-x86_64-ext-ebs" {
		t.Errorf("bake on the external volume: %+v", res2.Image)
	}
	if r, _ := rec.Last("RegisterImage"); formValue(r, "BootMode") != "uefi" { // the base's (moto registers every image uefi), which the disk boots
		t.Errorf("RegisterImage of the second bake: %s", r.Form)
	}
	ec2BakeRefusesNoLoader(t, e, env, bd, rec, deb)
}

// A bake on EC2 whose disk has no boot loader is refused with the reason,
// before it registers, and leaves nothing in EC2.
func ec2BakeRefusesNoLoader(t *testing.T, e *ec2test.Env, env *bake.Environment, bd *loopBlockDevice, rec *ec2test.Recorder, deb string) {
	t.Helper()
	ctx := context.Background()
	bd.image = ec2StandIn(t, e, false)
	registers := rec.Count("RegisterImage")
	res, err := bake.Run(ctx, env, bake.Request{Package: deb, BaseID: e.BaseID, Suffix: "noloader", Creator: "ci", VMType: "hvm"}, slog.New(slog.DiscardHandler))
	if err == nil || !errors.Is(err, bootdisk.ErrNoLoader) || !strings.Contains(err.Error(), "EC2's firmware would find nothing to boot") {
		t.Fatalf("a bake of a loader-less disk: %v", err)
	}
	if n := rec.Count("RegisterImage") - registers; n != 0 {
		t.Errorf("the refused bake called RegisterImage %d times", n)
	}
	vols, snaps := e.VolumesTagged(t, owner.Purpose, owner.PurposeWork), e.SnapshotsTagged(t, owner.Bake, res.BakeID)
	if len(vols) != 0 || len(snaps) != 0 || imagesNamed(ctx, t, e, "aminator-ec2-2.0-3-x86_64-noloader-ebs") != 0 {
		t.Errorf("the refused bake left %d volumes, %d snapshots or its image", len(vols), len(snaps))
	}
}

// formValue is a value of a recorded request's form.
func formValue(r ec2test.Request, key string) string {
	f, _ := url.ParseQuery(r.Form)
	return f.Get(key)
}

func mustImage(t *testing.T, c plugin.Cloud, id string) *plugin.Image {
	t.Helper()
	im, err := c.Image(context.Background(), plugin.ImageQuery{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func inspectFile(t *testing.T, file string, fn func(root string)) {
	t.Helper()
	ctx := context.Background()
	o := loop.Options{ReadOnly: true}
	if p, err := partition.Find(file, standInRootPartition); err == nil { // a stand-in disk (ec2StandIn)
		o.Offset, o.SizeLimit = uint64(p.Start), uint64(p.Size)
	}
	d, err := loop.Attach(ctx, file, o)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Detach()
	mnt := file + ".mnt"
	os.MkdirAll(mnt, 0o755)
	defer os.Remove(mnt)
	if err := syscall.Mount(d.Path, mnt, "ext4", syscall.MS_RDONLY, "noload"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(mnt, 0)
	fn(mnt)
}

// A bake killed with SIGKILL after its volume is attached leaves the
// volume in EC2; gc --cloud ec2 finds it (its bake's lock is free) and
// removes it. Bad input fails clearly.
func ec2KilledBakeAndGC(t *testing.T) {
	e := startEC2(t)
	state, _ := os.MkdirTemp(workDir(), "ec2-state-")
	vars := append(append([]string{}, e.Vars...), "AMINATOR_STATE_DIR="+state, "AMINATOR_ENVIRONMENT=ec2_apt_linux")
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-killed", Version: "1.0"})
	cmd := exec.Command(binary(), "-B", e.BaseID, "-s", "killed", deb)
	cmd.Env = shared().Env(vars...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tagged := func() []types.Volume { return e.VolumesTagged(t, owner.Purpose, owner.PurposeWork) }
	deadline := time.Now().Add(time.Minute)
	for {
		vs := tagged()
		if len(vs) == 1 && len(vs[0].Attachments) == 1 {
			break // attached; the bake now waits for a local device that never comes
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the bake never attached a volume: %+v", vs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := exec.Command("pgrep", "-P", fmt.Sprint(cmd.Process.Pid), "-x", "aminate").Output()
	var child int
	fmt.Sscan(string(out), &child)
	if child == 0 {
		t.Fatal("no bake child")
	}
	syscall.Kill(child, syscall.SIGKILL)
	cmd.Wait()
	if len(tagged()) != 1 {
		t.Fatal("the killed bake's volume is not in EC2")
	}
	r := aminateEnv(t, vars, "gc", "--cloud", "ec2", "--dry-run")
	if r.Code != 0 || !strings.Contains(r.Stdout, "would remove 1 volumes") {
		t.Errorf("gc --dry-run: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	mustOK(t, aminateEnv(t, vars, "gc", "--cloud", "ec2"))
	if vs := tagged(); len(vs) != 0 {
		t.Errorf("volumes after gc: %+v", vs)
	}
	// The image commands work on EC2 too.
	if out := mustOK(t, aminateEnv(t, vars, "images", "list")); !strings.Contains(out, e.BaseID) || !strings.Contains(out, e.BaseName) {
		t.Errorf("images list on ec2:\n%s", out)
	}
	if out := mustOK(t, aminateEnv(t, vars, "images", "show", e.BaseName)); !strings.Contains(out, "appversion = base-1.0-1") {
		t.Errorf("images show on ec2:\n%s", out)
	}
	// Bad input.
	r = aminateEnv(t, vars, "-B", "ami-00000000000000000", "-s", "bad", deb)
	if r.Code != 1 || !strings.Contains(r.Stderr, "no image with id ami-00000000000000000") {
		t.Errorf("bad base id: exit %d\n%s", r.Code, r.Stderr)
	}
	r = aminateEnv(t, vars, "-r", "us-east-l", "-B", e.BaseID, "-s", "bad", deb)
	if r.Code == 0 || !strings.Contains(r.Stderr, `region "us-east-l" is not a region name`) {
		t.Errorf("region typo: exit %d\n%s", r.Code, r.Stderr)
	}
}

// Bake on the local cloud, push to EC2 through the EBS direct APIs: the
// base goes whole, the baked child only as the blocks the bake changed.
func ec2PushLocalBake(t *testing.T) {
	e := startEC2(t)
	b := base(t)
	var full, incr struct {
		ImageID string `json:"image_id"`
		Parent  string `json:"parent_snapshot_id"`
		Blocks  int    `json:"blocks_sent"`
	}
	// Neither the imported base (a whole-disk filesystem) nor its child has a boot loader.
	out := mustOK(t, aminateEnv(t, e.Vars, "push", "--allow-no-loader", "--output", "json", b))
	if err := json.Unmarshal([]byte(out), &full); err != nil {
		t.Fatal(err)
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-pushed", Version: "1.0", Files: map[string]string{"/opt/pushed": "p\n"}})
	app := mustOK(t, aminate(t, "-B", b, "-s", "push", deb))
	out = mustOK(t, aminateEnv(t, e.Vars, "push", "--allow-no-loader", "--output", "json", app))
	if err := json.Unmarshal([]byte(out), &incr); err != nil {
		t.Fatal(err)
	}
	if full.Blocks < 100 || incr.Parent == "" || incr.Blocks == 0 || incr.Blocks*10 > full.Blocks {
		t.Errorf("full push %+v, incremental push %+v: the child should send a small fraction", full, incr)
	}
	t.Logf("pushed the base as %d blocks and the baked image as %d", full.Blocks, incr.Blocks)
	if im := showImage(t, app); im.Tags["pushed:"+e.Region] != incr.ImageID {
		t.Errorf("the local image does not record its AMI: %v", im.Tags)
	}
}
