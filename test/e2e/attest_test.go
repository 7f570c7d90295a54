package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

// Every bake is attested: its SBOMs validate against the official SPDX 2.3
// and CycloneDX 1.6 schemas and list exactly the packages dpkg-query lists
// in the image's disk, the baked package marked; verify passes on the
// image and fails on each tampering, and says the imported base has no
// provenance; images list --has finds it by package.
func TestBakeIsAttested(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-attested", Version: "3.1-1",
		Files: map[string]string{"/opt/attested/README": "attested\n"}})
	id := mustOK(t, aminate(t, "-B", b, "-s", "att", deb))

	e2etest.Shared().CheckSBOMs(t, id, 0)
	cdxDoc := mustOK(t, aminate(t, "images", "sbom", id, "--format", "cyclonedx"))
	if !strings.Contains(cdxDoc, "aminator-attested") {
		t.Errorf("the CycloneDX document does not name the baked package")
	}

	has := mustOK(t, aminate(t, "images", "list", "--has", "aminator-attested>=3.0,<4", "--output", "json"))
	if !strings.Contains(has, id) {
		t.Errorf("images list --has does not find %s:\n%s", id, has)
	}
	if none := mustOK(t, aminate(t, "images", "list", "--has", "aminator-attested=2.x", "--output", "json")); strings.Contains(none, id) {
		t.Errorf("images list --has finds %s at a version it does not have:\n%s", id, none)
	}

	verifyTampering(t, id)
	attestedImport(t, deb)
}

// An import attested on request has SBOMs like a bake's, and an app baked
// on it verifies with its whole lineage, ending at the import; an import
// of a file with no filesystem aminator can read fails and leaves no image.
func attestedImport(t *testing.T, deb string) {
	imp := mustOK(t, aminate(t, "images", "import", "attested-base", testutil.DebianBase(t), "--role", "base", "--attest"))
	e2etest.Shared().CheckSBOMs(t, imp, 0)
	app := mustOK(t, aminate(t, "-B", imp, "-s", "att2", deb))
	out := mustOK(t, aminate(t, "verify", app))
	if !strings.Contains(out, "ok   "+app) || !strings.Contains(out, "ok   "+imp) {
		t.Errorf("verify of an app on an attested import:\n%s", out)
	}
	junk := filepath.Join(t.TempDir(), "junk.img")
	if err := os.WriteFile(junk, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	before := mustOK(t, aminate(t, "images", "list", "--output", "json"))
	r := aminate(t, "images", "import", "junk", junk, "--attest")
	if r.Code == 0 || !strings.Contains(r.Stderr, "removed again") {
		t.Errorf("import --attest of a disk with no filesystem: exit %d\n%s", r.Code, r.Stderr)
	}
	if after := mustOK(t, aminate(t, "images", "list", "--output", "json")); after != before {
		t.Errorf("a failed import --attest left an image")
	}
}

// verifyTampering checks verify's verdicts: the app passes, its imported
// base has none; a flipped byte in an SBOM, a changed envelope, another
// signer's trust file each fail, and all is well again once undone.
func verifyTampering(t *testing.T, id string) {
	r := aminate(t, "verify", id, "--output", "json")
	var v struct {
		OK      bool                 `json:"ok"`
		Lineage []provenance.Verdict `json:"lineage"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || len(v.Lineage) != 2 {
		t.Fatalf("verify: %v\n%s\n%s", err, r.Stdout, r.Stderr)
	}
	if !v.Lineage[0].OK || v.Lineage[0].Package != "aminator-attested=3.1-1" {
		t.Errorf("the app's verdict: %+v", v.Lineage[0])
	}
	if v.OK || r.Code != 1 || v.Lineage[1].OK || !strings.Contains(v.Lineage[1].Error, "no provenance") {
		t.Errorf("the imported base: exit %d, %+v", r.Code, v.Lineage[1])
	}

	dir := filepath.Join(e2etest.Shared().State, "attest", id)
	for _, tc := range []struct{ name, file string }{
		{"flipped byte in the SPDX document", filepath.Join(dir, "spdx.json")},
		{"flipped byte in the CycloneDX document", filepath.Join(dir, "cyclonedx.json")},
		{"changed provenance envelope", filepath.Join(dir, "provenance.dsse.json")},
		{"flipped byte in the disk", appChunk(t, id)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.file
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(p, orig, 0o644)
			bad := append([]byte(nil), orig...)
			bad[len(bad)-2] ^= 1
			if err := os.WriteFile(p, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			r := aminate(t, "verify", id)
			if r.Code != 1 || !strings.Contains(r.Stdout, "FAIL "+id) {
				t.Errorf("verify after a %s: exit %d\n%s\n%s", tc.name, r.Code, r.Stdout, r.Stderr)
			}
		})
	}
	// A trust file that lists only another signer: verify fails on the
	// signer, not on the file.
	dir2 := t.TempDir()
	otherKey, other := filepath.Join(dir2, "other.pem"), filepath.Join(dir2, "trust.yml")
	mustOK(t, aminate(t, "keys", "create", "--out", otherKey, "--name", "other"))
	k, err := provenance.LoadKeyFile(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := provenance.TrustKey(other, "other", k.Public()); err != nil {
		t.Fatal(err)
	}
	if r := aminate(t, "verify", id, "--trust", other); r.Code != 1 || !strings.Contains(r.Stdout, "unknown signer") {
		t.Errorf("verify against a trust file without the signer: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	r = aminate(t, "verify", id)
	if !strings.Contains(r.Stdout, "ok   "+id) {
		t.Errorf("verify once the documents are back:\n%s\n%s", r.Stdout, r.Stderr)
	}
}

// appChunk is a stored chunk of the app's disk that its base does not
// share: the file a flipped bit of the disk is in.
func appChunk(t *testing.T, id string) string {
	store := filepath.Join(e2etest.Shared().State, "data", "store")
	chunks := func(im string) []string {
		var m struct {
			Chunks []string `json:"chunks"`
		}
		b, err := os.ReadFile(filepath.Join(store, "snapshots", showImage(t, im).Root().SnapshotID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.Chunks
	}
	inBase := map[string]bool{}
	for _, h := range chunks(base(t)) {
		inBase[h] = true
	}
	for _, h := range chunks(id) {
		if h != "" && !inBase[h] {
			return filepath.Join(store, "chunks", h[:2], h)
		}
	}
	t.Fatal("the app has no chunk of its own")
	return ""
}
