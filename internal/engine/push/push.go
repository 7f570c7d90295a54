// Package push sends an image of the local cloud to EC2 through the EBS
// direct APIs, from any machine (no EC2 instance, no volume attached): the
// store's 512 KiB chunks are EBS's blocks, so each chunk is one
// PutSnapshotBlock, its SHA-256 is the checksum EBS wants, and a snapshot
// whose parent was pushed before is sent as an incremental snapshot of the
// parent's EC2 snapshot — only the chunks that differ travel.
//
// Before anything is sent, the image's disk is read for its boot loaders
// (package bootdisk): it is registered with the boot mode they allow, and
// a disk EC2's firmware could not boot is refused with the reason.
package push

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
	"github.com/aminator-go/aminator/internal/store/snapstore"
	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// BlockSize is the EBS direct APIs' block size.
const BlockSize = 512 << 10

// Options tune a push.
type Options struct {
	// Name of the AMI (default: the local image's name).
	Name string
	Tags plugin.Tags
	// Workers is how many blocks are in flight (default 8).
	Workers int
	// Full sends every block even when the parent was pushed before.
	Full bool
	Log  *slog.Logger
	// EBSOptions adjust the EBS client (tests).
	EBSOptions []func(*ebs.Options)
	// LockDir holds the push's lock (push-ID.lock) while it runs: gc
	// (ec2.GCPlan) leaves the snapshot of a running push alone. "" takes
	// no lock.
	LockDir string
	// AllowNoLoader registers a disk with no boot loader (for a use other
	// than booting it) with no boot mode, instead of refusing it.
	AllowNoLoader bool
}

// Result is a pushed image.
type Result struct {
	Region     string        `json:"region"`
	ImageID    string        `json:"image_id"`
	SnapshotID string        `json:"snapshot_id"`
	Parent     string        `json:"parent_snapshot_id,omitempty"`
	Blocks     int           `json:"blocks_sent"`
	Bytes      int64         `json:"bytes_sent"`
	Duration   time.Duration `json:"duration_ns"`
}

// TagPushed is the tag, suffixed with the region, that records where a
// local snapshot or image went.
const TagPushed = "pushed:"

// job is one push in flight.
type job struct {
	lc     *local.Cloud
	ec     *ec2cloud.Cloud
	im     *plugin.Image
	o      Options
	store  *snapstore.Chunks
	m, pm  *snapstore.Manifest // the snapshot and, when incremental, its pushed parent
	client *ebs.Client
	res    *Result
	gib    int64
	id     string // the push's, in its snapshot's owner.Push
	mode   string // the boot mode to register
}

// Push sends the local image im to EC2 and registers it there.
func Push(ctx context.Context, lc *local.Cloud, ec *ec2cloud.Cloud, im *plugin.Image, o Options) (*Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Name == "" {
		o.Name = im.Name
	}
	j := &job{lc: lc, ec: ec, im: im, o: o, store: lc.Store(), res: &Result{Region: ec.Region()}, id: ids.New("push")}
	if o.LockDir != "" {
		lock, err := flock.TryExclusive(filepath.Join(o.LockDir, j.id+".lock"))
		if err != nil {
			return j.res, fmt.Errorf("push %s: %w", im.ID, err)
		}
		defer func() {
			os.Remove(lock.Path())
			lock.Unlock()
		}()
	}
	root := im.Root()
	if root == nil || root.SnapshotID == "" {
		return j.res, fmt.Errorf("image %s has no root snapshot", im.ID)
	}
	var err error
	if j.m, err = j.store.LoadManifest(root.SnapshotID); err != nil {
		return j.res, err
	}
	if j.m.ChunkSize != BlockSize {
		return j.res, fmt.Errorf("snapshot %s has %d-byte chunks; pushing needs %d (cloud.local chunk_size)", j.m.ID, j.m.ChunkSize, BlockSize)
	}
	if j.mode, err = j.bootMode(ctx); err != nil { // before any call to EC2
		return j.res, err
	}
	j.gib = (j.m.Size + (1<<30 - 1)) >> 30
	j.findParent(ctx)
	j.client = ebs.NewFromConfig(ec.AWSConfig(), o.EBSOptions...)
	if err := j.start(ctx); err != nil {
		return j.res, err
	}
	done := false
	defer func() { // a half-sent snapshot is never left behind
		if !done {
			ec.DeleteSnapshot(context.WithoutCancel(ctx), j.res.SnapshotID)
		}
	}()
	blocks := j.changedBlocks()
	if err := j.send(ctx, blocks); err != nil {
		return j.res, fmt.Errorf("push %s: %w", im.ID, err)
	}
	crashpoint.Hit("push-blocks")
	if _, err := j.client.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(j.res.SnapshotID), ChangedBlocksCount: aws.Int32(int32(len(blocks)))}); err != nil {
		return j.res, fmt.Errorf("CompleteSnapshot: %w", err)
	}
	if err := waitCompleted(ctx, ec, j.res.SnapshotID); err != nil {
		return j.res, err
	}
	crashpoint.Hit("push-snapshot")
	if err := j.register(ctx); err != nil {
		return j.res, err
	}
	done = true
	// Remember where they went: the next push of a child is incremental.
	if err := lc.CreateTags(ctx, j.m.ID, plugin.Tags{TagPushed + j.res.Region: j.res.SnapshotID}); err != nil {
		return j.res, err
	}
	if err := lc.CreateTags(ctx, im.ID, plugin.Tags{TagPushed + j.res.Region: j.res.ImageID}); err != nil {
		return j.res, err
	}
	j.res.Duration = time.Since(start)
	return j.res, nil
}

// findParent makes the push incremental when the snapshot's parent went to
// this region before and is still there.
func (j *job) findParent(ctx context.Context) {
	if j.o.Full || j.m.Parent == "" {
		return
	}
	ps, err := j.lc.Snapshot(ctx, j.m.Parent)
	if err != nil || ps.Tags[TagPushed+j.res.Region] == "" {
		return
	}
	remote := ps.Tags[TagPushed+j.res.Region]
	if rs, err := j.ec.Snapshot(ctx, remote); err == nil && rs.State == "completed" {
		if j.pm, err = j.store.LoadManifest(j.m.Parent); err == nil {
			j.res.Parent = remote
		}
	}
}

// ownTags are the tags that tie the EC2 snapshot and image to the local ones.
func (j *job) ownTags() plugin.Tags {
	return plugin.Tags{"aminator:local_image": j.im.ID, "aminator:local_snapshot": j.m.ID}
}

// start starts the EBS snapshot (on the parent's when incremental), tagged
// with the push's id and this machine's name, by which gc finds the
// snapshot of a push killed before it registered its image.
func (j *job) start(ctx context.Context) error {
	var ebsTags []ebstypes.Tag
	tags := j.ownTags()
	host, _ := os.Hostname()
	tags[owner.Push], tags[owner.PushHost] = j.id, host
	for k, v := range tags {
		ebsTags = append(ebsTags, ebstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	in := &ebs.StartSnapshotInput{VolumeSize: aws.Int64(j.gib), Description: aws.String("aminator push of " + j.im.Name), Tags: ebsTags, Timeout: aws.Int32(60)}
	if j.res.Parent != "" {
		in.ParentSnapshotId = aws.String(j.res.Parent)
	}
	started, err := j.client.StartSnapshot(ctx, in)
	if err != nil {
		return fmt.Errorf("StartSnapshot: %w", err)
	}
	j.res.SnapshotID = aws.ToString(started.SnapshotId)
	j.o.Log.Info("pushing", "image", j.im.ID, "snapshot", j.res.SnapshotID, "region", j.res.Region, "parent", j.res.Parent)
	return nil
}

// changedBlocks lists the blocks to send: all with data, or, when
// incremental, those that differ from the parent.
func (j *job) changedBlocks() []int {
	var blocks []int
	pm := j.pm
	for i, h := range j.m.Chunks {
		switch {
		case pm != nil && i < len(pm.Chunks) && pm.Chunks[i] == h:
			// unchanged since the parent
		case h == "" && (pm == nil || i >= len(pm.Chunks) || pm.Chunks[i] == ""):
			// zero, and zero (or absent) in the parent
		default:
			blocks = append(blocks, i)
		}
	}
	return blocks
}

// send puts the blocks on o.Workers workers; the first error stops it.
func (j *job) send(ctx context.Context, blocks []int) error {
	var sent atomic.Int64
	bar := progress.Start(ctx, "pushing blocks", int64(len(blocks))*BlockSize, progress.Bytes)
	defer bar.Done()
	errs := make(chan error, j.o.Workers)
	idx := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < j.o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := j.putBlock(ctx, i); err != nil {
					errs <- err
					return
				}
				sent.Add(BlockSize)
				bar.Add(BlockSize)
			}
		}()
	}
	var err error
feed:
	for _, i := range blocks {
		select {
		case idx <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	j.res.Blocks, j.res.Bytes = len(blocks), sent.Load()
	return err
}

var zeroBlock = make([]byte, BlockSize)

// putBlock sends block i with its SHA-256 (the chunk's own hash when the
// chunk is a whole block).
func (j *job) putBlock(ctx context.Context, i int) error {
	data := zeroBlock
	if h := j.m.Chunks[i]; h != "" {
		d, err := j.store.ReadChunk(h)
		if err != nil {
			return err
		}
		data = d
	}
	var sum []byte
	if len(data) == BlockSize && j.m.Chunks[i] != "" {
		sum, _ = hex.DecodeString(j.m.Chunks[i])
	} else {
		padded := make([]byte, BlockSize)
		copy(padded, data)
		data = padded
		s := sha256.Sum256(data)
		sum = s[:]
	}
	_, err := j.client.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
		SnapshotId: aws.String(j.res.SnapshotID), BlockIndex: aws.Int32(int32(i)), BlockData: bytes.NewReader(data),
		DataLength: aws.Int32(BlockSize), Checksum: aws.String(base64.StdEncoding.EncodeToString(sum)),
		ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	if err != nil {
		return fmt.Errorf("PutSnapshotBlock %d: %w", i, err)
	}
	return nil
}

// register registers the pushed snapshot as an AMI with the local image's
// tags (but its lineage, which names local ids) and the caller's.
func (j *job) register(ctx context.Context) error {
	tags := j.ownTags()
	for k, v := range j.im.Tags {
		if _, ours := tags[k]; !ours && k != "lineage" {
			tags[k] = v
		}
	}
	for k, v := range j.o.Tags {
		tags[k] = v
	}
	im := j.im
	ami, err := j.ec.RegisterImage(ctx, plugin.ImageRequest{
		Name: j.o.Name, Description: im.Description, Architecture: im.Architecture, VirtualizationType: "hvm",
		RootDeviceName: im.RootDeviceName, EnaSupport: true, BootMode: j.mode,
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: im.RootDeviceName, SnapshotID: j.res.SnapshotID, VolumeSizeGiB: j.gib, VolumeType: "gp3", DeleteOnTermination: true}},
		Tags:         tags,
	})
	if err != nil {
		return err
	}
	j.res.ImageID = ami.ID
	return nil
}

func waitCompleted(ctx context.Context, ec *ec2cloud.Cloud, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	defer progress.Wait(ctx, "EC2 completing snapshot "+id, 30*time.Minute)()
	for delay := 100 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		s, err := ec.Snapshot(ctx, id)
		if err != nil {
			return err
		}
		switch s.State {
		case "completed":
			return nil
		case "error":
			return errors.New("snapshot " + id + " failed in EC2")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for snapshot %s: %w", id, ctx.Err())
		case <-time.After(delay):
		}
	}
}
