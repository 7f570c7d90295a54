package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

var (
	crashOnce sync.Once
	crashBin  string
	crashErr  error
)

// crashBinary builds aminate with the crashpoint hooks (-tags crashpoint),
// once per run.
func crashBinary(t *testing.T) string {
	t.Helper()
	crashOnce.Do(func() {
		crashBin = filepath.Join(workDir, "aminate-crashpoint")
		build := exec.Command("go", "build", "-tags", "crashpoint", "-o", crashBin, "./cmd/aminate")
		build.Dir = testutil.RepoRoot()
		if b, err := build.CombinedOutput(); err != nil {
			crashErr = err
			crashBin = string(b)
		}
	})
	if crashErr != nil {
		t.Fatalf("build aminate -tags crashpoint: %v\n%s", crashErr, crashBin)
	}
	return crashBin
}

// crash runs the crashpoint build of aminate, to be killed at point: it
// must die there (its standard error names the point), not succeed.
func (c *cloud) crash(t *testing.T, point string, extraEnv []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, crashBinary(t), args...)
	cmd.Env = c.env(append(extraEnv, crashpoint.Env+"="+point)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 10 * time.Second // a hung crash fails the test, not the run
	err := cmd.Run()
	if err == nil || !strings.Contains(errb.String(), "crashpoint "+point) {
		t.Fatalf("aminate %v did not crash at %s: %v\nstdout:\n%s\nstderr:\n%s", args, point, err, out.String(), errb.String())
	}
}

// registry is what the local cloud shows of a state: its images and
// snapshots (with their states), volumes, stored manifests, and the files
// in its lock, mnt and tmp directories and its store's tmp (but the locks
// every command shares).
type registry struct {
	Images, Snapshots, Volumes, Manifests, Files []string
}

func (c *cloud) registry(t *testing.T) registry {
	t.Helper()
	var r registry
	var ims []plugin.Image
	var snaps []plugin.Snapshot
	var vols []plugin.Volume
	for what, v := range map[string]any{"images": &ims, "snapshots": &snaps, "volumes": &vols} {
		if err := json.Unmarshal([]byte(mustOK(t, c.aminate(t, what, "list", "--output", "json"))), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, im := range ims {
		r.Images = append(r.Images, im.ID)
	}
	for _, s := range snaps {
		r.Snapshots = append(r.Snapshots, s.ID+" "+s.State)
	}
	for _, v := range vols {
		r.Volumes = append(r.Volumes, v.ID+" "+v.State)
	}
	ms, _ := filepath.Glob(filepath.Join(c.state, "data", "store", "snapshots", "*.json"))
	for _, m := range ms {
		r.Manifests = append(r.Manifests, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	shared := []string{"loop.lock", "datafs.lock", "pool-take.lock", "blockdevice.lock"}
	for _, d := range []string{"lock", "mnt", "tmp", "data/store/tmp"} {
		ents, _ := os.ReadDir(filepath.Join(c.state, d))
		for _, e := range ents {
			if d == "lock" && (slices.Contains(shared, e.Name()) || strings.HasPrefix(e.Name(), "pool-snap-")) {
				continue
			}
			r.Files = append(r.Files, filepath.Join(d, e.Name()))
		}
	}
	for _, l := range [][]string{r.Images, r.Snapshots, r.Volumes, r.Manifests, r.Files} {
		sort.Strings(l)
	}
	return r
}

// recovered restarts after a crash: gc (again, until the killed job's lock
// is old enough to be stale) until the state is want, then fsck, which
// must find the store whole. Every stored manifest has its snapshot.
func (c *cloud) recovered(t *testing.T, point string, want registry) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got registry
	for {
		mustOK(t, c.aminate(t, "gc"))
		got = c.registry(t)
		if equalRegistry(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a crash at %s and gc, the state is\n%+v\nnot the old one\n%+v", point, got, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
	mustOK(t, c.aminate(t, "fsck"))
}

func equalRegistry(a, b registry) bool {
	return slices.Equal(a.Images, b.Images) && slices.Equal(a.Snapshots, b.Snapshots) && slices.Equal(a.Volumes, b.Volumes) &&
		slices.Equal(a.Manifests, b.Manifests) && slices.Equal(a.Files, b.Files)
}

// A bake killed at each durability point of its snapshot (chunks synced,
// manifest written, row completed), a pool refill killed before its volume
// is ready, and gc killed after planning and part-way through removing:
// after a restart, gc and fsck, the state is the old one, exactly — no
// image, snapshot, manifest, volume, lock, mount point or scratch of the
// killed job is left, and fsck finds the store whole. The bake run without
// a crash then makes the new state: its image registered and fsck-clean.
func TestCrashRecovery(t *testing.T) {
	c := isolated(t)
	b := mustOK(t, c.aminate(t, "images", "import", baseName, testutil.DebianBase(t), "--role", "base", "--tag", "base_ami_version=bookworm-1"))
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-crash", Version: "1.0", Files: map[string]string{"/opt/crash/file": "crash\n"}})
	mustOK(t, c.aminate(t, "gc"))
	old := c.registry(t)
	if len(old.Images) != 1 || len(old.Manifests) != 1 || len(old.Files) != 0 {
		t.Fatalf("the state before: %+v", old)
	}
	for _, point := range []string{"after-chunks", "after-manifest", "after-row"} {
		c.crash(t, point, nil, "-B", b, "-s", "crash", deb)
		c.recovered(t, point, old)
	}

	c.crash(t, "pool-refill", nil, "pool", "fill", b, "--size", "1")
	mustOK(t, c.aminate(t, "pool", "drain"))
	c.recovered(t, "pool-refill", old)

	app := mustOK(t, c.aminate(t, "-B", b, "-s", "crash", deb))
	mustOK(t, c.aminate(t, "fsck"))
	baked := c.registry(t)
	if len(baked.Images) != 2 || !slices.Contains(baked.Images, app) || len(baked.Manifests) != 2 {
		t.Fatalf("the bake without a crash: %+v", baked)
	}
	// Unused chunks for gc to remove, and gc killed at work.
	mustOK(t, c.aminate(t, "images", "rm", app))
	for _, point := range []string{"gc-plan", "gc-remove"} {
		c.crash(t, point, nil, "gc")
		if r := c.aminate(t, "fsck"); r.code != 0 {
			t.Fatalf("fsck after gc was killed at %s: %s%s", point, r.stdout, r.stderr)
		}
	}
	c.recovered(t, "gc-remove", old)
}

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
		shared.crash(t, point, e.Vars, "push", "--allow-no-loader", tiny)
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
		locks, _ := filepath.Glob(filepath.Join(stateDir, "lock", "push-*.lock"))
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
