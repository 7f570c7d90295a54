package ec2

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/blockdev"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/service"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// ebsStandIn answers the EBS direct APIs' reads (ListSnapshotBlocks,
// GetSnapshotBlock, in 512 KiB blocks as EBS does) for snapshots that
// CreateSnapshot made in moto, which keeps no data for them: a snapshot's
// data is the stand-in file of the volume it was taken of (the loop
// stand-in's), or of the base, padded with zeros to its volume size.
// Everything else goes to moto.
type ebsStandIn struct {
	next http.RoundTripper
	e    *ec2test.Env
	mu   sync.Mutex
	data map[string]string // snapshot id -> file
	gib  map[string]int64
}

func (s *ebsStandIn) set(snap, file string, gib int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[snap], s.gib[snap] = file, gib
}

func (s *ebsStandIn) RoundTrip(r *http.Request) (*http.Response, error) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method == http.MethodGet && len(parts) >= 3 && parts[0] == "snapshots" && parts[2] == "blocks" {
		s.mu.Lock()
		file, gib := s.data[parts[1]], s.gib[parts[1]]
		s.mu.Unlock()
		if file != "" {
			return s.answer(r, file, gib, parts[3:])
		}
	}
	return s.next.RoundTrip(r)
}

func (s *ebsStandIn) answer(r *http.Request, file string, gib int64, rest []string) (*http.Response, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	buf := make([]byte, diskdigest.ChunkSize)
	read := func(i int64) []byte {
		clear(buf)
		f.ReadAt(buf, i*diskdigest.ChunkSize)
		return buf
	}
	var body []byte
	if len(rest) == 0 { // ListSnapshotBlocks: the blocks with data
		st, _ := f.Stat()
		type block struct {
			BlockIndex int64
			BlockToken string
		}
		blocks := []block{}
		for i := int64(0); i*diskdigest.ChunkSize < st.Size(); i++ {
			if !bytes.Equal(read(i), make([]byte, diskdigest.ChunkSize)) {
				blocks = append(blocks, block{i, "t"})
			}
		}
		body, _ = json.Marshal(map[string]any{"Blocks": blocks, "VolumeSize": gib, "BlockSize": diskdigest.ChunkSize})
	} else {
		i, _ := strconv.ParseInt(rest[0], 10, 64)
		body = append([]byte{}, read(i)...)
		sum := sha256.Sum256(body)
		resp.Header.Set("x-amz-Checksum", base64.StdEncoding.EncodeToString(sum[:]))
		resp.Header.Set("x-amz-Checksum-Algorithm", "SHA256")
		resp.Header.Set("x-amz-Data-Length", fmt.Sprint(len(body)))
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return resp, nil
}

// attestedEC2 is an EC2 cloud on moto whose bakes attest, with
// attest.s3_bucket, and the stand-ins the test needs.
type attestedEC2 struct {
	e       *ec2test.Env
	cloud   *ec2cloud.Cloud
	standIn *ebsStandIn
	bd      *loopBlockDevice
	cfg     *config.Config
	st      *attest.Store
	env     *bake.Environment
	admin   *s3.Client
}

const attestBucket = "aminator-attest"

// newAttestedEC2 sets it up: the bucket, this host's key, and the moto
// base attested as a foundation would be.
func newAttestedEC2(t *testing.T, e *ec2test.Env) *attestedEC2 {
	t.Helper()

	ctx := context.Background()
	dir, err := os.MkdirTemp(workDir(), "ec2-attest-")
	if err != nil {
		t.Fatal(err)
	}
	standIn := &ebsStandIn{next: http.DefaultTransport, e: e, data: map[string]string{}, gib: map[string]int64{}}
	rec := &ec2test.Recorder{Next: standIn}
	s := ec2cloud.Defaults()
	s.PollInterval = 20 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	cloud, err := ec2cloud.New(ctx, s, "", log, ec2cloud.Option(awsconfig.WithHTTPClient(&http.Client{Transport: rec})))
	if err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, "lock")
	image := ec2StandIn(t, e, true)
	bd := &loopBlockDevice{Linux: &blockdev.Linux{Letters: "fghijklmnop", LockDir: lockDir, Attached: cloud, Dev: "/dev", Sys: "/sys"},
		image: image, dir: dir, devs: map[string]*loop.Device{}, files: map[string]string{}, fullSize: e.Client}
	baseSnap := mustImage(t, cloud, e.BaseID).Root().SnapshotID
	standIn.set(baseSnap, image, 2)

	bucket := attestBucket
	admin := s3Admin(e)
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{StateDir: dir, Attest: config.Attest{S3Bucket: bucket}}
	att, st, err := service.NewAttester(ctx, cfg, "ec2", cloud, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The moto base stands for a foundation: its provenance is this host's.
	baseDigest, err := cloud.DiskDigest(ctx, baseSnap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := att.Attest(ctx, bake.Attestation{ImageID: e.BaseID, DiskDigest: baseDigest, Inventory: &sbom.Inventory{}, Finished: time.Now(), BakeID: "foundation-standin", Started: time.Now().Add(-time.Minute),
		Configuration: map[string]any{"release": "stand-in"}}); err != nil {
		t.Fatal(err)
	}
	deps := plugin.Deps{Cloud: cloud, BlockDevice: bd, Logger: log, StateDir: dir, LockDir: lockDir}
	env := &bake.Environment{Name: "ec2_apt_linux", Cloud: cloud, StateDir: dir, Attest: att,
		Volume:      testutil.NewPlugin[plugin.Volumes](t, plugin.KindVolume, "linux", nil, deps),
		Distro:      testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", debian.Defaults(), deps),
		Provisioner: testutil.NewPlugin[plugin.Provisioner](t, plugin.KindProvisioner, "apt", nil, deps),
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_ebs", nil, deps),
	}
	return &attestedEC2{e: e, cloud: cloud, standIn: standIn, bd: bd, cfg: cfg, st: st, env: env, admin: admin}
}

// An attested bake on EC2 (moto) with attest.s3_bucket: the snapshot is
// tagged with the disk digest the bake read from its volume, which is
// diskdigest.OfFile of the volume's data; the three documents are in S3
// and the image is tagged with their references; verify, with this host's
// store lacking the image's documents, fetches them from S3 and passes;
// a byte changed in the S3 SPDX document fails it.
func ec2BakeAttested(t *testing.T) {
	x := newAttestedEC2(t, startEC2(t))
	e, cloud, bd, standIn, admin, st, cfg := x.e, x.cloud, x.bd, x.standIn, x.admin, x.st, x.cfg
	const bucket = attestBucket
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-attest", Version: "1.0-1", Files: map[string]string{"/opt/attest": "attested\n"}})
	res, err := bake.Run(ctx, x.env, bake.Request{Package: deb, BaseID: e.BaseID, Suffix: "attest", Creator: "ci", VMType: "hvm"}, log)
	if err != nil {
		t.Fatal(err)
	}
	im := mustImage(t, cloud, res.Image.ID)

	// The bake's snapshot's tag is the digest of the volume's data.
	snaps := e.SnapshotsTagged(t, owner.Bake, res.BakeID)
	if len(snaps) != 1 {
		t.Fatalf("the bake's snapshots: %d", len(snaps))
	}
	sn, err := cloud.Snapshot(ctx, aws.ToString(snaps[0].SnapshotId))
	if err != nil {
		t.Fatal(err)
	}
	volFile := bd.files[sn.VolumeID]
	if volFile == "" {
		t.Fatalf("the snapshot's volume %q is none of the stand-in's %v", sn.VolumeID, bd.files)
	}
	want := testutil.DiskDigest(t, volFile, sn.SizeBytes)
	if got := sn.Tags[owner.DiskDigest]; got != diskdigest.Algorithm+":"+want {
		t.Errorf("snapshot tag %s=%q; want %s:%s", owner.DiskDigest, got, diskdigest.Algorithm, want)
	}
	standIn.set(sn.ID, volFile, sn.SizeBytes>>30)
	if got, err := cloud.ReadDiskDigest(ctx, sn.ID); err != nil || got != want {
		t.Errorf("ReadDiskDigest of the bake's snapshot: %s, %v; want %s", got, err, want)
	}
	// moto registers the image with a snapshot of its own: it stands for
	// the bake's.
	standIn.set(im.Root().SnapshotID, volFile, sn.SizeBytes>>30)

	// The documents are in S3, and the image names them.
	prefix := config.DefaultS3Prefix + im.ID + "/"
	if keys := bucketKeys(t, admin, bucket); strings.Join(keys, ",") != prefix+"cyclonedx.json,"+prefix+"provenance.dsse.json,"+prefix+"spdx.json" {
		t.Errorf("bucket keys %v", keys)
	}
	spdx := getObject(t, admin, bucket, prefix+"spdx.json")
	sum := sha256.Sum256(spdx)
	if got, want := im.Tags[owner.SBOM], fmt.Sprintf("s3://%s/%sspdx.json#sha256=%x", bucket, prefix, sum); got != want {
		t.Errorf("image tag sbom=%q, want %q", got, want)
	}
	if !strings.HasPrefix(im.Tags[owner.Provenance], "s3://"+bucket+"/"+prefix+"provenance.dsse.json#sha256=") {
		t.Errorf("image tag provenance=%q", im.Tags[owner.Provenance])
	}

	// verify, with the image's documents only in S3.
	if err := st.Delete(ctx, im.ID); err != nil {
		t.Fatal(err)
	}
	trust, err := provenance.LoadTrust(cfg.Attest.Trust(cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	remote := service.Remote(cfg.Attest, cloud)
	v, err := service.VerifyImage(ctx, cloud, st, remote, trust, im.ID, time.Now())
	if err != nil || !v.OK || len(v.Verdicts) != 2 {
		t.Fatalf("verify of the EC2 image: %+v, %v", v, err)
	}
	spdx[len(spdx)/2] ^= 1
	if _, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "spdx.json"), Body: bytes.NewReader(spdx)}); err != nil {
		t.Fatal(err)
	}
	v, err = service.VerifyImage(ctx, cloud, st, remote, trust, im.ID, time.Now())
	if err != nil || v.OK || !strings.Contains(v.Verdicts[0].Error, "image "+im.ID+"'s sbom tag says") {
		t.Errorf("verify with a changed S3 SPDX document: %+v, %v", v, err)
	}
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
