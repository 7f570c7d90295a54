package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// The EC2 cloud gives a snapshot's disk digest from the tag its bake
// wrote (DiskDigest), and recomputes it through the EBS direct APIs
// (ReadDiskDigest).
var (
	_ plugin.DiskDigests    = (*Cloud)(nil)
	_ plugin.DiskDigestTags = (*Cloud)(nil)
)

// DiskDigestTag is the tag a bake writes on its snapshot: key
// owner.DiskDigest, value "chunkedSha256-512k:HEX".
func (c *Cloud) DiskDigestTag(digest string) (key, value string) {
	return owner.DiskDigest, diskdigest.Algorithm + ":" + digest
}

// DiskDigest is the digest the snapshot's disk_digest tag records (the
// bake read it from the volume before the snapshot); a snapshot without
// the tag (one made by hand, or before bakes wrote it) is read through
// the EBS direct APIs.
func (c *Cloud) DiskDigest(ctx context.Context, snapshotID string) (string, error) {
	sn, err := c.Snapshot(ctx, snapshotID)
	if err != nil {
		return "", err
	}
	if v, ok := sn.Tags[owner.DiskDigest]; ok {
		d, ok := strings.CutPrefix(v, diskdigest.Algorithm+":")
		if !ok || !isHexDigest(d) {
			return "", fmt.Errorf("snapshot %s: tag %s=%q is not %s:HEX", snapshotID, owner.DiskDigest, v, diskdigest.Algorithm)
		}
		return d, nil
	}
	return c.ReadDiskDigest(ctx, snapshotID)
}

func isHexDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// digestWorkers is how many chunks ReadDiskDigest fetches at once.
const digestWorkers = 8

// ReadDiskDigest recomputes the snapshot's disk digest from its data,
// read through the EBS direct APIs (ListSnapshotBlocks, GetSnapshotBlock):
// each block's data is checked against the checksum EBS returns with it,
// blocks the snapshot does not list are zeros, and blocks smaller than
// 512 KiB (EBS's is 512 KiB) are put together into 512 KiB chunks. The
// disk's size is the snapshot's volume size.
func (c *Cloud) ReadDiskDigest(ctx context.Context, snapshotID string) (string, error) {
	sn, err := c.Snapshot(ctx, snapshotID)
	if err != nil {
		return "", err
	}
	client := c.ebsClient()
	blocks, blockSize, err := listBlocks(ctx, client, snapshotID)
	if err != nil {
		return "", err
	}
	if len(blocks) == 0 && blockSize == 0 { // nothing stored: all zeros
		blockSize = diskdigest.ChunkSize
	}
	l, err := newLayout(blockSize, sn.SizeBytes)
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", snapshotID, err)
	}
	get := func(ctx context.Context, b ebstypes.Block) ([]byte, error) {
		return getBlock(ctx, client, snapshotID, b, blockSize)
	}
	hashes, err := l.chunkHashes(ctx, blocks, get)
	if err != nil {
		return "", fmt.Errorf("disk digest of snapshot %s: %w", snapshotID, err)
	}
	return diskdigest.FromChunkHashes(hashes, sn.SizeBytes)
}

// ebsClient is the EBS direct APIs' client, made once.
func (c *Cloud) ebsClient() *ebs.Client {
	c.ebsOnce.Do(func() { c.ebs = ebs.NewFromConfig(c.cfg) })
	return c.ebs
}

// listBlocks lists the snapshot's stored blocks and their size.
func listBlocks(ctx context.Context, client *ebs.Client, id string) ([]ebstypes.Block, int32, error) {
	var (
		out       []ebstypes.Block
		blockSize int32
	)
	in := &ebs.ListSnapshotBlocksInput{SnapshotId: aws.String(id)}
	for {
		page, err := client.ListSnapshotBlocks(ctx, in)
		if err != nil {
			return nil, 0, apiErr("ListSnapshotBlocks", err)
		}
		if bs := aws.ToInt32(page.BlockSize); bs != 0 {
			blockSize = bs
		}
		out = append(out, page.Blocks...)
		if aws.ToString(page.NextToken) == "" {
			return out, blockSize, nil
		}
		in.NextToken = page.NextToken
	}
}

// getBlock fetches one block and checks its length and checksum.
func getBlock(ctx context.Context, client *ebs.Client, id string, b ebstypes.Block, blockSize int32) ([]byte, error) {
	idx := aws.ToInt32(b.BlockIndex)
	out, err := client.GetSnapshotBlock(ctx, &ebs.GetSnapshotBlockInput{SnapshotId: aws.String(id), BlockIndex: b.BlockIndex, BlockToken: b.BlockToken})
	if err != nil {
		return nil, apiErr("GetSnapshotBlock", err)
	}
	defer out.BlockData.Close()
	data, err := io.ReadAll(io.LimitReader(out.BlockData, int64(blockSize)+1))
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", idx, err)
	}
	if len(data) > int(blockSize) {
		return nil, fmt.Errorf("block %d has more than %d bytes, the snapshot's block size", idx, blockSize)
	}
	if len(data) != int(blockSize) {
		return nil, fmt.Errorf("block %d has %d bytes; the snapshot's blocks have %d", idx, len(data), blockSize)
	}
	if err := checkBlock(data, out.ChecksumAlgorithm, aws.ToString(out.Checksum)); err != nil {
		return nil, fmt.Errorf("block %d: %w", idx, err)
	}
	return data, nil
}

// checkBlock checks a block's data against the base64 SHA-256 EBS gave.
func checkBlock(data []byte, alg ebstypes.ChecksumAlgorithm, sum string) error {
	if alg != ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256 {
		return fmt.Errorf("checksum algorithm %q, want SHA256", alg)
	}
	got := sha256.Sum256(data)
	if want, err := base64.StdEncoding.DecodeString(sum); err != nil || string(want) != string(got[:]) {
		return fmt.Errorf("data does not match its checksum %q (SHA-256 %s)", sum, base64.StdEncoding.EncodeToString(got[:]))
	}
	return nil
}

// layout is how a snapshot's blocks make up the digest's chunks.
type layout struct {
	blockSize int64
	perChunk  int64 // blocks in one chunk
	size      int64 // the disk's bytes
}

func newLayout(blockSize int32, size int64) (layout, error) {
	bs := int64(blockSize)
	if bs <= 0 || bs > diskdigest.ChunkSize || diskdigest.ChunkSize%bs != 0 {
		return layout{}, fmt.Errorf("block size %d does not divide the disk digest's %d-byte chunks", blockSize, diskdigest.ChunkSize)
	}
	return layout{blockSize: bs, perChunk: diskdigest.ChunkSize / bs, size: size}, nil
}

// chunkHashes hashes every chunk that has stored blocks (its other blocks
// are zeros), fetching each block with get, digestWorkers chunks at a
// time; a chunk with none is "" (zeros) as diskdigest.FromChunkHashes
// takes it.
func (l layout) chunkHashes(ctx context.Context, blocks []ebstypes.Block, get func(context.Context, ebstypes.Block) ([]byte, error)) ([]string, error) {
	nChunks := (l.size + diskdigest.ChunkSize - 1) / diskdigest.ChunkSize
	byChunk := map[int64][]ebstypes.Block{}
	for _, b := range blocks {
		i := int64(aws.ToInt32(b.BlockIndex))
		if i < 0 || (i+1)*l.blockSize > l.size {
			return nil, fmt.Errorf("block %d lies outside the %d-byte disk", i, l.size)
		}
		byChunk[i/l.perChunk] = append(byChunk[i/l.perChunk], b)
	}
	todo := slices.Sorted(func(yield func(int64) bool) {
		for k := range byChunk {
			if !yield(k) {
				return
			}
		}
	})
	hashes := make([]string, nChunks)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int64)
	var wg sync.WaitGroup
	for range min(digestWorkers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, diskdigest.ChunkSize)
			for k := range work {
				h, err := l.chunk(ctx, k, byChunk[k], buf, get)
				if err != nil {
					cancel(err)
					continue
				}
				hashes[k] = h
			}
		}()
	}
feed:
	for _, k := range todo {
		select {
		case work <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return hashes, nil
}

// chunk assembles chunk k from its stored blocks (zeros between them)
// and returns its SHA-256 in hex.
func (l layout) chunk(ctx context.Context, k int64, blocks []ebstypes.Block, buf []byte, get func(context.Context, ebstypes.Block) ([]byte, error)) (string, error) {
	n := min(int64(diskdigest.ChunkSize), l.size-k*diskdigest.ChunkSize)
	b := buf[:n]
	clear(b)
	for _, blk := range blocks {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		data, err := get(ctx, blk)
		if err != nil {
			return "", err
		}
		if int64(len(data)) != l.blockSize {
			return "", fmt.Errorf("block %d has %d bytes, not %d", aws.ToInt32(blk.BlockIndex), len(data), l.blockSize)
		}
		copy(b[(int64(aws.ToInt32(blk.BlockIndex))%l.perChunk)*l.blockSize:], data)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
