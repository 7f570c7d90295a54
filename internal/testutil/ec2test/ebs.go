package ec2test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
)

// EBS is a client of moto's EBS direct APIs.
func (e *Env) EBS() *ebs.Client {
	return ebs.New(ebs.Options{Region: e.Region, BaseEndpoint: aws.String(e.MotoURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
}

// PutSnapshot writes the raw disk file as a new snapshot of gib GiB
// through the EBS direct APIs (StartSnapshot, PutSnapshotBlock of every
// block that is not all zeros, CompleteSnapshot) in blocks of blockSize
// bytes, and returns its id. moto keeps these blocks as given, and
// answers ListSnapshotBlocks with a block size of 512 whatever was put:
// a test that reads the snapshot back gives 512 here. (Snapshots that
// CreateSnapshot makes have no data in moto at all.)
func (e *Env) PutSnapshot(t testing.TB, file string, gib int64, blockSize int) string {
	t.Helper()
	ctx := context.Background()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := e.EBS()
	st, err := c.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(gib), Description: aws.String("ec2test " + file)})
	if err != nil {
		t.Fatalf("StartSnapshot: %v", err)
	}
	id := aws.ToString(st.SnapshotId)
	n := 0
	// The file is read a window at a time, and a window of zeros (most of
	// a sparse disk) is skipped whole.
	window := blockSize * max(1, (1<<20)/blockSize)
	buf, zero := make([]byte, window), make([]byte, window)
	for woff := int64(0); ; woff += int64(window) {
		clear(buf)
		k, err := f.ReadAt(buf, woff)
		if k == 0 && err != nil {
			break
		}
		if bytes.Equal(buf, zero) {
			continue
		}
		for off := 0; off < k; off += blockSize {
			b := buf[off : off+blockSize]
			if bytes.Equal(b, zero[:blockSize]) {
				continue
			}
			idx := int32((woff + int64(off)) / int64(blockSize))
			sum := sha256.Sum256(b)
			if _, err := c.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{SnapshotId: aws.String(id), BlockIndex: aws.Int32(idx),
				BlockData: bytes.NewReader(b), DataLength: aws.Int32(int32(blockSize)), Checksum: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
				ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256}); err != nil {
				t.Fatalf("PutSnapshotBlock %d: %v", idx, err)
			}
			n++
		}
	}
	if _, err := c.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(id), ChangedBlocksCount: aws.Int32(int32(n))}); err != nil {
		t.Fatalf("CompleteSnapshot: %v", err)
	}
	return id
}

// MotoEBS is an HTTP transport that mends what moto's ListSnapshotBlocks
// gets wrong beyond the block size: it writes each BlockIndex as a JSON
// string (the key it keeps the block under), which the SDK, like EBS's
// API, takes only as a number. Next nil is http.DefaultTransport.
type MotoEBS struct{ Next http.RoundTripper }

var quotedIndex = regexp.MustCompile(`"BlockIndex": ?"([0-9]+)"`)

// RoundTrip passes the request on and mends a block list's indexes.
func (m MotoEBS) RoundTrip(r *http.Request) (*http.Response, error) {
	next := m.Next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blocks") || !strings.HasPrefix(r.URL.Path, "/snapshots/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = quotedIndex.ReplaceAll(body, []byte(`"BlockIndex": $1`))
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}
