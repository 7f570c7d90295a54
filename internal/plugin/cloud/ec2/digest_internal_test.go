package ec2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
)

// A disk's chunks put together from stored blocks of any size that
// divides 512 KiB give the digest of the whole disk read at once: blocks
// not stored are zeros, and the last chunk may be short.
func TestChunksFromBlocks(t *testing.T) {
	ctx := context.Background()
	for _, bs := range []int32{512, 4096, diskdigest.ChunkSize} {
		size := int64(4 * diskdigest.ChunkSize)
		if bs < diskdigest.ChunkSize {
			size = 3*diskdigest.ChunkSize + 8192 // a short last chunk
		}
		disk := make([]byte, size)
		for _, off := range []int64{0, 513, 600 << 10, 2*diskdigest.ChunkSize - 1, size - 5} {
			copy(disk[off:], "data")
		}
		want, err := diskdigest.Of(ctx, bytes.NewReader(disk), size)
		if err != nil {
			t.Fatal(err)
		}
		l, err := newLayout(bs, size)
		if err != nil {
			t.Fatal(err)
		}
		var blocks []ebstypes.Block
		for i := int64(0); (i+1)*int64(bs) <= size; i++ {
			if !bytes.Equal(disk[i*int64(bs):(i+1)*int64(bs)], make([]byte, bs)) {
				blocks = append(blocks, ebstypes.Block{BlockIndex: aws.Int32(int32(i))})
			}
		}
		gets := 0
		get := func(_ context.Context, b ebstypes.Block) ([]byte, error) {
			gets++
			i := int64(aws.ToInt32(b.BlockIndex))
			return disk[i*int64(bs) : (i+1)*int64(bs)], nil
		}
		hashes, err := l.chunkHashes(ctx, blocks, get)
		if err != nil {
			t.Fatalf("block size %d: %v", bs, err)
		}
		got, err := diskdigest.FromChunkHashes(hashes, size)
		if err != nil || got != want {
			t.Errorf("block size %d: digest %s, %v; want %s", bs, got, err, want)
		}
		if gets != len(blocks) {
			t.Errorf("block size %d: %d blocks fetched, %d stored", bs, gets, len(blocks))
		}
	}
}

// A block size that does not divide 512 KiB is refused with the reason;
// a block beyond the disk, a short block and a failed fetch fail the digest.
func TestChunksFromBlocksRefusals(t *testing.T) {
	for _, bs := range []int32{0, 3000, 1 << 20} {
		if _, err := newLayout(bs, 1<<30); err == nil || !strings.Contains(err.Error(), "does not divide") {
			t.Errorf("block size %d: %v", bs, err)
		}
	}
	ctx := context.Background()
	l, _ := newLayout(512, diskdigest.ChunkSize)
	ok := func(context.Context, ebstypes.Block) ([]byte, error) { return make([]byte, 512), nil }
	if _, err := l.chunkHashes(ctx, []ebstypes.Block{{BlockIndex: aws.Int32(1024)}}, ok); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("a block beyond the disk: %v", err)
	}
	short := func(context.Context, ebstypes.Block) ([]byte, error) { return make([]byte, 100), nil }
	if _, err := l.chunkHashes(ctx, []ebstypes.Block{{BlockIndex: aws.Int32(3)}}, short); err == nil || !strings.Contains(err.Error(), "has 100 bytes") {
		t.Errorf("a short block: %v", err)
	}
	boom := errors.New("boom")
	fail := func(context.Context, ebstypes.Block) ([]byte, error) { return nil, boom }
	if _, err := l.chunkHashes(ctx, []ebstypes.Block{{BlockIndex: aws.Int32(3)}}, fail); !errors.Is(err, boom) {
		t.Errorf("a failed fetch: %v", err)
	}
}

// A block whose data does not match the checksum EBS gave is refused.
func TestCheckBlock(t *testing.T) {
	data := []byte("block")
	good := "SWrKgOTY8p+46M2BbDr7SNPxA5cLOi7hYAwIymcybe4=" // base64 SHA-256 of "block"
	if err := checkBlock(data, ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256, good); err != nil {
		t.Errorf("good block: %v", err)
	}
	if err := checkBlock([]byte("blocK"), ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256, good); err == nil {
		t.Errorf("a changed block passed")
	}
	if err := checkBlock(data, "", good); err == nil || !strings.Contains(err.Error(), "algorithm") {
		t.Errorf("no algorithm: %v", fmt.Sprint(err))
	}
}
