// Package push sends an image of the local cloud to EC2 through the EBS
// direct APIs, from any machine (no EC2 instance, no volume attached): the
// store's 512 KiB chunks are EBS's blocks, so each chunk is one
// PutSnapshotBlock, its SHA-256 is the checksum EBS wants, and a snapshot
// whose parent was pushed before is sent as an incremental snapshot of the
// parent's EC2 snapshot — only the chunks that differ travel.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	ec2cloud "github.com/aminator-go/aminator/internal/cloud/ec2"
	"github.com/aminator-go/aminator/internal/cloud/local"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/progress"
	"github.com/aminator-go/aminator/internal/snapstore"
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

// Push sends the local image im to EC2 and registers it there.
func Push(ctx context.Context, lc *local.Cloud, ec *ec2cloud.Cloud, im *plugin.Image, o Options) (res *Result, err error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	region := ec.Region()
	res = &Result{Region: region}
	root := im.Root()
	if root == nil || root.SnapshotID == "" {
		return res, fmt.Errorf("image %s has no root snapshot", im.ID)
	}
	store := lc.Store()
	m, err := store.LoadManifest(root.SnapshotID)
	if err != nil {
		return res, err
	}
	if m.ChunkSize != BlockSize {
		return res, fmt.Errorf("snapshot %s has %d-byte chunks; pushing needs %d (cloud.local chunk_size)", m.ID, m.ChunkSize, BlockSize)
	}
	name := o.Name
	if name == "" {
		name = im.Name
	}

	// Incremental when the parent went to this region before and is still there.
	var pm *snapstore.Manifest
	if !o.Full && m.Parent != "" {
		if ps, err := lc.Snapshot(ctx, m.Parent); err == nil && ps.Tags[TagPushed+region] != "" {
			remote := ps.Tags[TagPushed+region]
			if rs, err := ec.Snapshot(ctx, remote); err == nil && rs.State == "completed" {
				if pm, err = store.LoadManifest(m.Parent); err == nil {
					res.Parent = remote
				}
			}
		}
	}
	client := ebs.NewFromConfig(ec.AWSConfig(), o.EBSOptions...)
	gib := int64((m.Size + (1<<30 - 1)) >> 30)
	tags := plugin.Tags{"aminator:local_image": im.ID, "aminator:local_snapshot": m.ID}
	var ebsTags []ebstypes.Tag
	for k, v := range tags {
		ebsTags = append(ebsTags, ebstypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	in := &ebs.StartSnapshotInput{VolumeSize: aws.Int64(gib), Description: aws.String("aminator push of " + im.Name), Tags: ebsTags, Timeout: aws.Int32(60)}
	if res.Parent != "" {
		in.ParentSnapshotId = aws.String(res.Parent)
	}
	started, err := client.StartSnapshot(ctx, in)
	if err != nil {
		return res, fmt.Errorf("StartSnapshot: %w", err)
	}
	res.SnapshotID = aws.ToString(started.SnapshotId)
	o.Log.Info("pushing", "image", im.ID, "snapshot", res.SnapshotID, "region", region, "parent", res.Parent)
	done := false
	defer func() {
		if !done {
			ec.DeleteSnapshot(context.WithoutCancel(ctx), res.SnapshotID)
		}
	}()

	var blocks []int
	for i, h := range m.Chunks {
		switch {
		case pm != nil && i < len(pm.Chunks) && pm.Chunks[i] == h:
			// unchanged since the parent
		case h == "" && (pm == nil || i >= len(pm.Chunks) || pm.Chunks[i] == ""):
			// zero, and zero (or absent) in the parent
		default:
			blocks = append(blocks, i)
		}
	}
	var sent atomic.Int64
	bar := progress.Start(ctx, "pushing blocks", int64(len(blocks))*BlockSize, progress.Bytes)
	defer bar.Done()
	errs := make(chan error, o.Workers)
	idx := make(chan int)
	var wg sync.WaitGroup
	zero := make([]byte, BlockSize)
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				data := zero
				if h := m.Chunks[i]; h != "" {
					d, err := store.ReadChunk(h)
					if err != nil {
						errs <- err
						return
					}
					data = d
				}
				var sum []byte
				if len(data) == BlockSize && m.Chunks[i] != "" {
					sum, _ = hex.DecodeString(m.Chunks[i]) // the chunk's hash is the block's
				} else {
					padded := make([]byte, BlockSize)
					copy(padded, data)
					data = padded
					s := sha256.Sum256(data)
					sum = s[:]
				}
				_, err := client.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
					SnapshotId: aws.String(res.SnapshotID), BlockIndex: aws.Int32(int32(i)), BlockData: bytes.NewReader(data),
					DataLength: aws.Int32(BlockSize), Checksum: aws.String(base64.StdEncoding.EncodeToString(sum)),
					ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
				})
				if err != nil {
					errs <- fmt.Errorf("PutSnapshotBlock %d: %w", i, err)
					return
				}
				sent.Add(BlockSize)
				bar.Add(BlockSize)
			}
		}()
	}
	var sendErr error
feed:
	for _, i := range blocks {
		select {
		case idx <- i:
		case sendErr = <-errs:
			break feed
		case <-ctx.Done():
			sendErr = ctx.Err()
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if sendErr == nil {
		select {
		case sendErr = <-errs:
		default:
		}
	}
	if sendErr != nil {
		return res, fmt.Errorf("push %s: %w", im.ID, sendErr)
	}
	res.Blocks, res.Bytes = len(blocks), sent.Load()
	if _, err := client.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(res.SnapshotID), ChangedBlocksCount: aws.Int32(int32(len(blocks)))}); err != nil {
		return res, fmt.Errorf("CompleteSnapshot: %w", err)
	}
	if err := waitCompleted(ctx, ec, res.SnapshotID); err != nil {
		return res, err
	}
	for k, v := range im.Tags {
		if _, ours := tags[k]; !ours && k != "lineage" {
			tags[k] = v
		}
	}
	for k, v := range o.Tags {
		tags[k] = v
	}
	ami, err := ec.RegisterImage(ctx, plugin.ImageRequest{
		Name: name, Description: im.Description, Architecture: im.Architecture, VirtualizationType: "hvm",
		RootDeviceName: im.RootDeviceName, EnaSupport: true,
		BlockDevices: []plugin.BlockDeviceMapping{{DeviceName: im.RootDeviceName, SnapshotID: res.SnapshotID, VolumeSizeGiB: gib, VolumeType: "gp3", DeleteOnTermination: true}},
		Tags:         tags,
	})
	if err != nil {
		return res, err
	}
	done = true
	res.ImageID = ami.ID
	// Remember where they went: the next push of a child is incremental.
	if err := lc.CreateTags(ctx, m.ID, plugin.Tags{TagPushed + region: res.SnapshotID}); err != nil {
		return res, err
	}
	if err := lc.CreateTags(ctx, im.ID, plugin.Tags{TagPushed + region: ami.ID}); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
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
