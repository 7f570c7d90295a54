package ec2_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// sparseDisk makes a sparse raw disk of gib GiB with a little data here
// and there (in the first and last chunks, across a block boundary).
func sparseDisk(t *testing.T, gib int64) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(gib << 30); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 510, 700 << 10, 300 << 20, gib<<30 - 7} {
		if _, err := f.WriteAt([]byte("aminator"[:min(8, int(gib<<30-off))]), off); err != nil {
			t.Fatal(err)
		}
	}
	return file
}

// ebsCloud is a cloud whose EBS client takes moto's block lists.
func ebsCloud(t *testing.T) *ec2cloud.Cloud {
	t.Helper()
	s := ec2cloud.Defaults()
	s.PollInterval = 50 * time.Millisecond
	c, err := ec2cloud.New(context.Background(), s, "", nil, ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: ec2test.MotoEBS{}})))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ReadDiskDigest through moto's EBS direct APIs (which report 512-byte
// blocks) is diskdigest.OfFile of the disk that was snapshotted; without
// a disk_digest tag DiskDigest reads it too, with one it gives the tag's;
// a stored block whose data no longer matches its checksum fails the read.
func TestDiskDigestThroughEBS(t *testing.T) {
	e := ec2test.Start(t)
	c := ebsCloud(t)
	ctx := context.Background()
	disk := sparseDisk(t, 1)
	want := testutil.DiskDigest(t, disk, 1<<30)
	snap := e.PutSnapshot(t, disk, 1, 512)

	if got, err := c.ReadDiskDigest(ctx, snap); err != nil || got != want {
		t.Fatalf("ReadDiskDigest: %s, %v; want diskdigest.OfFile's %s", got, err, want)
	}
	if got, err := c.DiskDigest(ctx, snap); err != nil || got != want {
		t.Errorf("DiskDigest without the tag: %s, %v; want %s", got, err, want)
	}
	k, v := c.DiskDigestTag(want)
	if k != owner.DiskDigest || v != "chunkedSha256-512k:"+want {
		t.Errorf("DiskDigestTag: %s=%s", k, v)
	}
	recorded := strings.Repeat("ab", 32) // the tag wins: DiskDigest reads nothing
	if err := c.CreateTags(ctx, snap, plugin.Tags{k: "chunkedSha256-512k:" + recorded}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.DiskDigest(ctx, snap); err != nil || got != recorded {
		t.Errorf("DiskDigest with the tag: %s, %v; want the tag's %s", got, err, recorded)
	}
	if err := c.CreateTags(ctx, snap, plugin.Tags{k: "sha256:" + recorded}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DiskDigest(ctx, snap); err == nil || !strings.Contains(err.Error(), "is not chunkedSha256-512k:HEX") {
		t.Errorf("DiskDigest with a malformed tag: %v", err)
	}
	if _, err := c.ReadDiskDigest(ctx, "snap-0123456789abcdef0"); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("ReadDiskDigest of a missing snapshot: %v", err)
	}

	// moto stores a block as given: one whose data changed after its
	// checksum was taken stands for a corrupt block.
	block := make([]byte, 512)
	copy(block, "aminatoR")
	good := sha256.Sum256(append([]byte("aminator"), make([]byte, 504)...))
	if _, err := e.EBS().PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: aws.String(snap), BlockIndex: aws.Int32(0),
		BlockData: bytes.NewReader(block), DataLength: aws.Int32(512), Checksum: aws.String(base64.StdEncoding.EncodeToString(good[:])),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadDiskDigest(ctx, snap); err == nil || !strings.Contains(err.Error(), "block 0: data does not match its checksum") {
		t.Errorf("ReadDiskDigest of a changed block: %v", err)
	}
}

// A snapshot written in 512 KiB blocks (as aminate push and EBS itself
// write them), which moto still says are 512 bytes, is refused with the
// reason rather than digested wrongly.
func TestDiskDigestRefusesInconsistentBlocks(t *testing.T) {
	e := ec2test.Start(t)
	c := ebsCloud(t)
	snap := e.PutSnapshot(t, sparseDisk(t, 1), 1, diskdigest.ChunkSize)
	if _, err := c.ReadDiskDigest(context.Background(), snap); err == nil || !strings.Contains(err.Error(), "has more than 512 bytes, the snapshot's block size") {
		t.Errorf("ReadDiskDigest of moto's 512 KiB blocks said to be 512 bytes: %v", err)
	}
}
