package service

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/owner"
)

// Without attest.s3_bucket an EC2 image is tagged with its SPDX SBOM's
// and provenance's SHA-256 and nothing is uploaded; a bucket makes
// s3:// references, which fall back to sha256:HEX past 256 characters.
func TestEC2DocsTags(t *testing.T) {
	ctx := context.Background()
	docs := bake.Documents{SPDX: []byte("spdx"), CycloneDX: []byte("cdx"), Provenance: []byte("prov")}
	d := &ec2Docs{prefix: config.DefaultS3Prefix}
	tags, err := d.Publish(ctx, "ami-1", docs)
	if err != nil {
		t.Fatal(err)
	}
	if want := (plugin.Tags{owner.SBOMSHA256: hexSum(docs.SPDX), owner.ProvenanceSHA256: hexSum(docs.Provenance)}); !maps.Equal(tags, want) {
		t.Errorf("tags without a bucket: %v", tags)
	}
	if !slices.Equal(d.TagKeys(), []string{owner.SBOMSHA256, owner.ProvenanceSHA256}) {
		t.Errorf("TagKeys without a bucket: %v", d.TagKeys())
	}
	d.bucket = "b"
	if got, want := d.ref("ami-1", "spdx.json", docs.SPDX), "s3://b/aminator/attest/ami-1/spdx.json#sha256="+hexSum(docs.SPDX); got != want {
		t.Errorf("ref %s, want %s", got, want)
	}
	d.prefix = strings.Repeat("p/", 100)
	if got := d.ref("ami-1", "spdx.json", docs.SPDX); got != "sha256:"+hexSum(docs.SPDX) {
		t.Errorf("a reference past 256 characters: %s", got)
	}
	for _, ref := range []string{"s3://b/k", "s3:///k#sha256=" + hexSum(nil), "sha256:12", "http://b/k#sha256=" + hexSum(nil)} {
		if _, _, _, err := parseRef(ref); err == nil {
			t.Errorf("parseRef(%q) passed", ref)
		}
	}
	if b, k, s, err := parseRef("s3://b/x/y.json#sha256=" + hexSum(nil)); err != nil || b != "b" || k != "x/y.json" || s != hexSum(nil) {
		t.Errorf("parseRef: %s %s %s %v", b, k, s, err)
	}
}

// On EC2 a bake that attests plans, before any work, the disk_digest tag
// on its snapshot and the two references on its image, so EC2's 50-tag
// limit counts them.
func TestEC2AttestTagsCounted(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	c, err := ec2cloud.New(context.Background(), ec2cloud.Defaults(), "us-east-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{"", "b"} {
		env := &bake.Environment{Cloud: c, Attest: &bake.Attester{Publisher: newEC2Docs(config.Attest{S3Bucket: bucket}, c)}}
		image, snapshot := plugin.Tags{}, plugin.Tags{}
		bake.AttestTags(env, image, snapshot)
		want := []string{owner.SBOMSHA256, owner.ProvenanceSHA256}
		if bucket != "" {
			want = []string{owner.SBOM, owner.Provenance}
		}
		if got := slices.Sorted(maps.Keys(image)); !slices.Equal(got, slices.Sorted(slices.Values(want))) || len(snapshot) != 1 || snapshot[owner.DiskDigest] == "" {
			t.Errorf("bucket %q: planned image tags %v, snapshot tags %v", bucket, got, snapshot)
		}
		user := plugin.Tags{}
		for i := range 48 {
			user[string(rune('a'+i%26))+strings.Repeat("x", i/26)] = "v"
		}
		if err := bake.CheckTags(plugin.LimitsOf(c), user, map[string]plugin.Tags{"image": image}); err == nil {
			t.Errorf("bucket %q: 48 user tags and 2 attestation tags (and the later ones) passed EC2's 50", bucket)
		}
	}
}
