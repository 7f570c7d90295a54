package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

var (
	t0  = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// bakeInputs are a bake of app 1.0-1 as image id on base.
func bakeInputs(id, base string) Inputs {
	return Inputs{
		Image: Image{ID: id, DiskDigest: digest("disk of " + id)},
		SBOMs: []SBOM{
			{Name: id + ".spdx.json", MediaType: "application/spdx+json", SHA256: digest("spdx of " + id)},
			{Name: id + ".cdx.json", MediaType: "application/vnd.cyclonedx+json", SHA256: digest("cdx of " + id)},
		},
		Base:          &Image{ID: base, DiskDigest: digest("disk of " + base)},
		Package:       &Package{Name: "app", Version: "1.0-1", SHA256: digest("app_1.0-1.deb"), URI: "pkg:deb/debian/app@1.0-1?arch=amd64"},
		Configuration: map[string]any{"vm_type": "hvm", "root_volume_size": 8, "tags": map[string]any{"b": "2", "a": "1"}},
		BuilderID:     "https://github.com/aminator-go/aminator/builder/test-host",
		Tool:          "aminator", Version: "1.4.0",
		BakeID: "bake-" + id, Started: t0, Finished: t0.Add(90 * time.Second),
	}
}

// foundationInputs are a foundation image id.
func foundationInputs(id string) Inputs {
	in := bakeInputs(id, "")
	in.Base, in.Package = nil, nil
	in.Configuration = map[string]any{"release": "trixie", "source_date_epoch": 1765000000}
	return in
}

// newKey is a fresh key file's signer.
func newKey(t testing.TB, alg string) *KeySigner {
	t.Helper()
	pemBytes, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trusting is a Trust of the signers, with no validity bounds.
func trusting(t testing.TB, signers ...*KeySigner) *Trust {
	t.Helper()
	tr := &Trust{}
	for i, s := range signers {
		if err := tr.Add("signer-"+string(rune('a'+i)), s.Public(), time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// signed is the envelope of in's statement signed by s.
func signed(t testing.TB, in Inputs, s Signer) []byte {
	t.Helper()
	st, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign(context.Background(), st, s)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// expect is what a verifier measures of in's image.
func expect(in Inputs) Expect {
	e := Expect{ImageID: in.Image.ID, DiskDigest: in.Image.DiskDigest}
	for _, s := range in.SBOMs {
		e.SBOMSHA256 = append(e.SBOMSHA256, s.SHA256)
	}
	return e
}
