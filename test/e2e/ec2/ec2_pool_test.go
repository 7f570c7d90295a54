package ec2

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/blockdev"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// ec2Env is an EC2 environment in process against moto, with the loop
// stand-in for the disk (see loopBlockDevice) and a recorder of the calls.
type ec2Env struct {
	env   *bake.Environment
	cloud *ec2cloud.Cloud
	rec   *ec2test.Recorder
	bd    *loopBlockDevice
}

func newEC2Env(t *testing.T, s *ec2cloud.Settings, dir, image string) *ec2Env {
	t.Helper()
	rec := &ec2test.Recorder{}
	log := slog.New(slog.DiscardHandler)
	cloud, err := ec2cloud.New(context.Background(), s, "", log, ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: rec})))
	if err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, "lock")
	cloud.UseDirs(dir, lockDir)
	bd := &loopBlockDevice{Linux: &blockdev.Linux{Letters: "fghijklmnop", LockDir: lockDir, Attached: cloud, Dev: "/dev", Sys: "/sys"},
		image: image, dir: dir, devs: map[string]*loop.Device{}, files: map[string]string{}}
	deps := plugin.Deps{Cloud: cloud, BlockDevice: bd, Logger: log, StateDir: dir, LockDir: lockDir}
	env := &bake.Environment{Name: "ec2_apt_linux", Cloud: cloud, StateDir: dir,
		Volume:      testutil.NewPlugin[plugin.Volumes](t, plugin.KindVolume, "linux", nil, deps),
		Distro:      testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", debian.Defaults(), deps),
		Provisioner: testutil.NewPlugin[plugin.Provisioner](t, plugin.KindProvisioner, "apt", nil, deps),
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, deps),
	}
	return &ec2Env{env: env, cloud: cloud, rec: rec, bd: bd}
}

// calls sums the recorded calls by action ("IMDS" for metadata).
func (x *ec2Env) calls(from int) (int, string) {
	counts := map[string]int{}
	n := 0
	for _, r := range x.rec.Requests[from:] {
		a := r.Action
		if a == "" {
			a = "IMDS"
		}
		counts[a]++
		n++
	}
	var keys []string
	for k, c := range counts {
		keys = append(keys, fmt.Sprintf("%s %d", k, c))
	}
	sort.Strings(keys)
	return n, strings.Join(keys, ", ")
}

// A bake on EC2 takes a pooled volume: CreateVolume is not called during
// the bake (with pool_attach neither is AttachVolume), the pool is asked to
// refill and a refill makes it up; a bake without a pool makes its own.
// The calls of each bake are logged (BENCHMARKS.md).
func ec2PoolBake(t *testing.T) {
	e := startEC2(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-pool", Version: "1.0", Files: map[string]string{"/opt/pool": "pool\n"}})
	ctx := context.Background()
	for i, mode := range []string{"no pool", "pool", "pool_attach"} {
		dir, err := os.MkdirTemp(workDir(), "ec2pool-")
		if err != nil {
			t.Fatal(err)
		}
		s := ec2cloud.Defaults()
		s.PollInterval, s.PoolAttach = 20*time.Millisecond, mode == "pool_attach"
		x := newEC2Env(t, s, dir, ec2StandIn(t, e, true))
		snap := mustImage(t, x.cloud, e.BaseID).Root().SnapshotID
		if mode != "no pool" {
			if _, err := x.cloud.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: e.BaseID, Target: 1, Devices: x.bd.Linux}); err != nil {
				t.Fatal(err)
			}
		}
		x.cloud.Host(ctx) // once per process: not the bake's
		var refills []string
		x.cloud.OnPoolTake(func(s string) { refills = append(refills, s) })
		from := len(x.rec.Requests)
		start := time.Now()
		res, err := bake.Run(ctx, x.env, bake.Request{Package: deb, BaseID: e.BaseID, Suffix: fmt.Sprint("pool", i), Creator: "ci", VMType: "hvm"}, slog.New(slog.DiscardHandler))
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for name, d := range x.bd.devs { // a volume attached by the pool had no slot to release its stand-in
			d.Detach()
			delete(x.bd.devs, name)
		}
		n, by := x.calls(from)
		t.Logf("%s: %d API calls (%s); bake took %s, %s of it the test's stand-in for the disk", mode, n, by, took.Round(time.Millisecond), x.bd.took.Round(time.Millisecond))
		creates, attaches := strings.Contains(by, "CreateVolume "), strings.Contains(by, "AttachVolume ")
		if creates != (mode == "no pool") || attaches != (mode != "pool_attach") {
			t.Errorf("%s: CreateVolume called %v, AttachVolume called %v", mode, creates, attaches)
		}
		for _, f := range x.bd.files {
			inspectFile(t, f, func(root string) {
				if got := readFile(t, filepath.Join(root, "opt/pool")); got != "pool\n" {
					t.Errorf("%s: /opt/pool = %q", mode, got)
				}
			})
		}
		if res.Image == nil {
			t.Fatalf("%s: no image", mode)
		}
		if mode == "no pool" {
			continue
		}
		if len(refills) != 1 || refills[0] != snap {
			t.Errorf("%s: refills asked %v", mode, refills)
		}
		if made, err := x.cloud.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Target: -1, Devices: x.bd.Linux}); err != nil || made != 1 {
			t.Errorf("%s: refill made %d: %v", mode, made, err)
		}
		if n, err := x.cloud.DrainPool(ctx, ""); err != nil || n != 1 {
			t.Errorf("%s: drain %d: %v", mode, n, err)
		}
	}
	for _, v := range e.VolumesTagged(t, owner.Purpose, owner.PurposePool, owner.PurposeWork) {
		t.Errorf("volume left: %s %s %+v", aws.ToString(v.VolumeId), v.State, v.Tags)
	}
}

// The pool commands on the EC2 environment, through the binary: fill,
// status, the refill the job's parent starts (pool fill --snapshot), gc
// of a gone host's pool volume, drain.
func ec2PoolCommands(t *testing.T) {
	e := startEC2(t)
	state, _ := os.MkdirTemp(workDir(), "ec2-pool-state-")
	vars := append(append([]string{}, e.Vars...), "AMINATOR_STATE_DIR="+state, "AMINATOR_ENVIRONMENT=ec2_apt_linux")
	ctx := context.Background()
	pooled := func() []types.Volume { return e.VolumesTagged(t, owner.Purpose, owner.PurposePool) }
	out := mustOK(t, aminateEnv(t, vars, "pool", "fill", e.BaseID, "--size", "2"))
	if !strings.Contains(out, "made 2 volumes") || len(pooled()) != 2 {
		t.Fatalf("fill: %s", out)
	}
	snap := aws.ToString(pooled()[0].SnapshotId)
	var st []plugin.PoolStatus
	if err := json.Unmarshal([]byte(mustOK(t, aminateEnv(t, vars, "pool", "status", "--output", "json"))), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].SnapshotID != snap || strings.Join(st[0].Images, ",") != e.BaseID || st[0].Target != 2 || st[0].Ready != 2 {
		t.Errorf("status %+v", st)
	}
	// A bake took one: the parent's refill makes it up.
	taken := aws.ToString(pooled()[0].VolumeId)
	e.Client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{taken}, Tags: []types.Tag{{Key: aws.String(owner.Purpose), Value: aws.String(owner.PurposeWork)}}})
	if out := mustOK(t, aminateEnv(t, vars, "pool", "fill", "--snapshot", snap, "--state-dir", state, "-e", "ec2_apt_linux")); !strings.Contains(out, "made 1 volumes") {
		t.Errorf("refill: %s", out)
	}
	e.Client.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(taken)})
	// A pool volume of a host that is gone.
	e.Client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(e.AZ), SnapshotId: aws.String(snap),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{
			{Key: aws.String(owner.Purpose), Value: aws.String(owner.PurposePool)}, {Key: aws.String(owner.Host), Value: aws.String("i-0123456789abcdef0")}}}}})
	if r := aminateEnv(t, vars, "gc", "--cloud", "ec2", "--dry-run"); r.Code != 0 || !strings.Contains(r.Stdout, "would remove 1 volumes") {
		t.Errorf("gc --dry-run: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	mustOK(t, aminateEnv(t, vars, "gc", "--cloud", "ec2"))
	if n := len(pooled()); n != 2 {
		t.Errorf("pool volumes after gc: %d", n)
	}
	if out := mustOK(t, aminateEnv(t, vars, "pool", "drain", e.BaseID)); !strings.Contains(out, "deleted 2 ready volumes") || len(pooled()) != 0 {
		t.Errorf("drain: %s", out)
	}
	if out := mustOK(t, aminateEnv(t, vars, "pool", "status")); strings.Contains(out, snap) {
		t.Errorf("status after drain:\n%s", out)
	}
	// Bad input.
	if r := aminateEnv(t, vars, "pool", "fill", "ami-00000000000000000"); r.Code == 0 || !strings.Contains(r.Stderr, "ami-00000000000000000") {
		t.Errorf("fill of a missing image: exit %d\n%s", r.Code, r.Stderr)
	}
}

// The whole path through the binary: a bake takes the pool's volume (moto
// gives it no local device, so the bake then fails, after a 1 s wait, and
// deletes it), and the parent, outside the job's namespaces, refills the
// pool in the background with the job's environment and --config.
func ec2PoolRefillAfterBake(t *testing.T) {
	e := startEC2(t)
	state, _ := os.MkdirTemp(workDir(), "ec2-refill-state-")
	conf := filepath.Join(state, "extra.yml")
	os.WriteFile(conf, []byte("plugins:\n  blockdevice.linux:\n    locate_timeout: 1s\n  cloud.ec2:\n    poll_interval: 50ms\n"), 0o644)
	vars := append(append([]string{}, e.Vars...), "AMINATOR_STATE_DIR="+state, "AMINATOR_ENVIRONMENT=ec2_apt_linux")
	pooled := func() []string {
		var ids []string
		for _, v := range e.VolumesTagged(t, owner.Purpose, owner.PurposePool) {
			ids = append(ids, aws.ToString(v.VolumeId))
		}
		return ids
	}
	mustOK(t, aminateEnv(t, vars, "--config", conf, "pool", "fill", e.BaseID, "--size", "1"))
	first := pooled()
	if len(first) != 1 {
		t.Fatalf("pool: %v", first)
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-refill", Version: "1.0"})
	r := aminateEnv(t, vars, "--config", conf, "--debug", "-B", e.BaseID, "-s", "refill", deb)
	if r.Code == 0 || !strings.Contains(r.Stderr, "no local device appeared") {
		t.Fatalf("bake: exit %d\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "volume taken from the pool") || !strings.Contains(r.Stderr, first[0]) {
		t.Errorf("the bake did not take %s:\n%s", first[0], r.Stderr)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		now := pooled()
		if len(now) == 1 && now[0] != first[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool was not refilled: %v", now)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The refill ends once the pool is full; drain it when it has.
	for time.Now().Before(deadline) {
		if exec.Command("pgrep", "-f", "--", "pool fill --snapshot .* --state-dir "+state).Run() != nil { // none left
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := mustOK(t, aminateEnv(t, vars, "--config", conf, "pool", "drain")); !strings.Contains(out, "deleted 1 ready volumes") {
		t.Errorf("drain: %s", out)
	}
}
