package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// TestKMS runs its subtests on one moto server.
func TestKMS(t *testing.T) {
	moto := ec2test.Moto(t)
	t.Run("sign and verify", func(t *testing.T) { testKMSSigner(t, moto) })
	t.Run("long payloads as digest", func(t *testing.T) { testKMSSignsLongPayloadsAsDigest(t, moto) })
	t.Run("refuses", func(t *testing.T) { testKMSSignerRefuses(t, moto) })
}

// kmsKey makes a KMS key of spec on moto and returns a client that
// records its requests.
func kmsKey(t *testing.T, moto string, spec types.KeySpec) (*kms.Client, string, *ec2test.Recorder) {
	t.Helper()
	rec := &ec2test.Recorder{}
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), HTTPClient: &http.Client{Transport: rec}})
	out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	return c, aws.ToString(out.KeyMetadata.KeyId), rec
}

// signRequest is the last kms:Sign request rec saw.
func signRequest(t *testing.T, rec *ec2test.Recorder) map[string]string {
	t.Helper()
	for i := len(rec.Requests) - 1; i >= 0; i-- {
		var m map[string]string
		if json.Unmarshal([]byte(rec.Requests[i].Form), &m) == nil && m["SigningAlgorithm"] != "" {
			return m
		}
	}
	t.Fatal("no kms:Sign request was sent")
	return nil
}

func testKMSSigner(t *testing.T, moto string) {
	ctx := context.Background()
	c, key, rec := kmsKey(t, moto, types.KeySpecEccNistP256)
	s, err := NewKMSSigner(ctx, c, key)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trust{}
	if err := tr.Add("kms", s.Public(), t0, now); err != nil {
		t.Fatal(err)
	}
	in := bakeInputs("img-app", "img-base")
	res, err := Verify(signed(t, in, s), tr, now, expect(in))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.KeyID()
	if res.Signer.KeyID != id {
		t.Fatalf("verified as %+v", res.Signer)
	}
	if req := signRequest(t, rec); req["MessageType"] != "RAW" || req["KeyId"] != key || req["SigningAlgorithm"] != "ECDSA_SHA_256" {
		t.Fatalf("kms:Sign request %v", req)
	}
}

// testKMSSignsLongPayloadsAsDigest checks the request for a statement
// longer than kms:Sign takes as RAW: its SHA-256 as a DIGEST. moto 5.2
// signs a DIGEST message as if it were RAW (hashing it again), so the
// signature it returns is not checked here; real KMS signs the digest.
func testKMSSignsLongPayloadsAsDigest(t *testing.T, moto string) {
	ctx := context.Background()
	c, key, rec := kmsKey(t, moto, types.KeySpecEccNistP256)
	s, err := NewKMSSigner(ctx, c, key)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("x", kmsRawLimit+1))
	if _, err := s.Sign(ctx, data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if req := signRequest(t, rec); req["MessageType"] != "DIGEST" || req["Message"] != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("kms:Sign request %v", req)
	}
}

func testKMSSignerRefuses(t *testing.T, moto string) {
	ctx := context.Background()
	c, key, _ := kmsKey(t, moto, types.KeySpecRsa2048)
	if _, err := NewKMSSigner(ctx, c, key); err == nil || !strings.Contains(err.Error(), "cannot sign ECDSA_SHA_256") {
		t.Fatalf("an RSA key: %v", err)
	}
	if _, err := NewKMSSigner(ctx, c, "alias/missing"); err == nil || !strings.Contains(err.Error(), "get public key") {
		t.Fatalf("a missing key: %v", err)
	}
}
