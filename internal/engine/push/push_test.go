package push_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"

	"github.com/aminator-go/aminator/internal/engine/push"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

const bs = push.BlockSize

func writeAt(t *testing.T, path string, data []byte, block int) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, int64(block)*bs); err != nil {
		t.Fatal(err)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// A local image goes to EC2 through the EBS direct APIs, block for block;
// a child of it goes as an incremental snapshot with only what changed.
// (Its random blocks hold no boot loader: --allow-no-loader.)
func TestPushFullThenIncremental(t *testing.T) {
	e := ec2test.Start(t)
	ctx := context.Background()
	lc, err := local.Open(local.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	raw := filepath.Join(t.TempDir(), "disk.img")
	f, _ := os.Create(raw)
	f.Truncate(16 * bs) // 8 MiB: 16 blocks
	f.Close()
	b0, b5, b9 := random(bs), random(bs), random(bs)
	writeAt(t, raw, b0, 0)
	writeAt(t, raw, b5, 5)
	writeAt(t, raw, b9, 9)
	base, err := lc.Import(ctx, raw, local.ImportOptions{Name: "pushed-base", Architecture: "x86_64", VirtualizationType: "hvm", Tags: plugin.Tags{"role": "base"}})
	if err != nil {
		t.Fatal(err)
	}
	s := ec2cloud.Defaults()
	s.PollInterval = 20 * time.Millisecond
	ec, err := ec2cloud.New(ctx, s, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	lockDir := t.TempDir()
	res, err := push.Push(ctx, lc, ec, base, push.Options{LockDir: lockDir, AllowNoLoader: true})
	if err != nil {
		t.Fatal(err)
	}
	// Its snapshot names the push and this machine, for gc; its lock is gone.
	host, _ := os.Hostname()
	if s, err := ec.Snapshot(ctx, res.SnapshotID); err != nil || !strings.HasPrefix(s.Tags[owner.Push], "push-") || s.Tags[owner.PushHost] != host {
		t.Errorf("pushed snapshot %+v %v", s, err)
	}
	if left, _ := filepath.Glob(filepath.Join(lockDir, "*")); len(left) != 0 {
		t.Errorf("the push left %v", left)
	}
	if res.Blocks != 3 || res.Parent != "" || res.ImageID == "" {
		t.Errorf("full push %+v", res)
	}
	ami, err := ec.Image(ctx, plugin.ImageQuery{ID: res.ImageID})
	if err != nil || ami.Name != "pushed-base" || ami.Tags["aminator:local_image"] != base.ID || ami.Tags["role"] != "base" {
		t.Errorf("registered %+v %v", ami, err)
	}
	got := readBlocks(t, e, res.SnapshotID)
	if len(got) != 3 || !bytes.Equal(got[0], b0) || !bytes.Equal(got[5], b5) || !bytes.Equal(got[9], b9) {
		t.Errorf("blocks in EC2: %d (indices %v)", len(got), slices.Sorted(maps.Keys(got)))
	}

	// A child: one block changed, one zeroed, one added.
	vol, err := lc.CreateVolume(ctx, plugin.VolumeRequest{SnapshotID: base.Root().SnapshotID})
	if err != nil {
		t.Fatal(err)
	}
	b5b, b12 := random(bs), random(bs)
	writeAt(t, lc.VolumePath(vol.ID), b5b, 5)
	writeAt(t, lc.VolumePath(vol.ID), make([]byte, bs), 9)
	writeAt(t, lc.VolumePath(vol.ID), b12, 12)
	snap, err := lc.CreateSnapshot(ctx, plugin.SnapshotRequest{VolumeID: vol.ID})
	if err != nil {
		t.Fatal(err)
	}
	lc.DeleteVolume(ctx, vol.ID)
	child, err := lc.RegisterImage(ctx, plugin.ImageRequest{Name: "pushed-child", Architecture: "x86_64", VirtualizationType: "hvm", RootDeviceName: "/dev/sda1",
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: "/dev/sda1", SnapshotID: snap.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := push.Push(ctx, lc, ec, child, push.Options{AllowNoLoader: true})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Parent != res.SnapshotID || res2.Blocks != 3 {
		t.Errorf("incremental push %+v: want parent %s and 3 blocks (changed, zeroed, added)", res2, res.SnapshotID)
	}
	got = readBlocks(t, e, res2.SnapshotID)
	if !bytes.Equal(got[5], b5b) || !bytes.Equal(got[12], b12) || (got[9] != nil && !bytes.Equal(got[9], make([]byte, bs))) {
		t.Errorf("child blocks: %v", slices.Sorted(maps.Keys(got)))
	}
	if _, ok := got[0]; ok {
		t.Error("an unchanged block was sent again")
	}
	// A second push of the same image is refused by name, and leaves no snapshot behind.
	if _, err := push.Push(ctx, lc, ec, child, push.Options{AllowNoLoader: true}); err == nil {
		t.Error("pushed the same name twice")
	}
}

// fixMoto turns moto's string block indices ("BlockIndex": "5") into the
// numbers the EBS API returns, which the SDK insists on.
type fixMoto struct{}

var quotedIndex = regexp.MustCompile(`"(BlockIndex|VolumeSize|BlockSize)":\s*"(\d+)"`)

func (fixMoto) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "/blocks") {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b = quotedIndex.ReplaceAll(b, []byte(`"$1": $2`))
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// readBlocks reads a snapshot's blocks back from EC2 (moto) with the EBS
// direct read APIs.
func readBlocks(t *testing.T, e *ec2test.Env, snap string) map[int32][]byte {
	t.Helper()
	ctx := context.Background()
	c := ebs.New(ebs.Options{Region: e.Region, BaseEndpoint: aws.String(e.MotoURL), HTTPClient: &http.Client{Transport: fixMoto{}},
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	out, err := c.ListSnapshotBlocks(ctx, &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(snap)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32][]byte{}
	for _, b := range out.Blocks {
		r, err := c.GetSnapshotBlock(ctx, &ebs.GetSnapshotBlockInput{SnapshotId: aws.String(snap), BlockIndex: b.BlockIndex, BlockToken: b.BlockToken})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r.BlockData)
		got[aws.ToInt32(b.BlockIndex)] = data
	}
	return got
}
