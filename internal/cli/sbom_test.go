package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/service"
)

// runIn runs aminate on the state directory under dir, which outlives
// the call.
func runIn(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("AMINATOR_CONFIG_DIR", filepath.Join(dir, "etc"))
	t.Setenv("HOME", filepath.Join(dir, "home"))
	args = append([]string{"--state-dir", filepath.Join(dir, "state"), "--log-dir", filepath.Join(dir, "log"), "--store-fs", "none"}, args...)
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// importImage registers an empty ext4 disk as an image on the local cloud
// and returns its id.
func importImage(t *testing.T, dir, name string) string {
	t.Helper()
	disk := filepath.Join(dir, name+".img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", disk).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	code, out, errOut := runIn(t, dir, "images", "import", name, disk)
	if code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

// The documents a bake stores are what `images sbom` prints and what
// `images list --has` searches; `images rm` and gc remove them with their
// image.
func TestImagesSBOMAndHas(t *testing.T) {
	dir := t.TempDir()
	id, plain := importImage(t, dir, "web-1"), importImage(t, dir, "imported")
	cfg := &config.Config{StateDir: filepath.Join(dir, "state"), Context: config.Context{Region: "local"}}
	s, err := service.OpenAttest(cfg, "local")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	spdx, cdx := `{"spdxVersion":"SPDX-2.3"}`, `{"bomFormat":"CycloneDX","specVersion":"1.6"}`
	inv := &sbom.Inventory{Kind: sbom.KindDeb, Packages: []sbom.Package{{Name: "openssl", Version: "3.0.11-1~deb12u2", Arch: "amd64"}}}
	if err := s.Put(ctx, id, inv, attest.Doc{Kind: attest.KindSPDX, Body: []byte(spdx)}, attest.Doc{Kind: attest.KindCycloneDX, Body: []byte(cdx)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ami-0000000000000dead", inv, attest.Doc{Kind: attest.KindSPDX, Body: []byte(spdx)}); err != nil {
		t.Fatal(err)
	}

	if code, out, errOut := runIn(t, dir, "images", "sbom", "web-1"); code != 0 || out != spdx {
		t.Errorf("images sbom: %d %q %s", code, out, errOut)
	}
	if code, out, errOut := runIn(t, dir, "images", "sbom", id, "--format", "cyclonedx"); code != 0 || out != cdx {
		t.Errorf("images sbom --format cyclonedx: %d %q %s", code, out, errOut)
	}
	file := filepath.Join(dir, "web.spdx.json")
	if code, _, errOut := runIn(t, dir, "images", "sbom", "web-1", "-o", file); code != 0 {
		t.Errorf("images sbom -o: %d %s", code, errOut)
	} else if b, _ := os.ReadFile(file); string(b) != spdx {
		t.Errorf("images sbom -o wrote %q", b)
	}
	if code, _, errOut := runIn(t, dir, "images", "sbom", "web-1", "--format", "xml"); code != 2 {
		t.Errorf("--format xml: %d %s", code, errOut)
	}
	if code, _, errOut := runIn(t, dir, "images", "sbom", "imported"); code != 1 || !strings.Contains(errOut, "image "+plain+" has no spdx SBOM: it was made before aminator wrote SBOMs, or imported") {
		t.Errorf("an image without an SBOM: %d %s", code, errOut)
	}

	code, out, errOut := runIn(t, dir, "images", "list", "--has", "openssl=3.0.x")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "3.0.11-1~deb12u2 (amd64)") || strings.Contains(out, plain) || strings.Contains(out, "dead") {
		t.Errorf("list --has: %d %s %s", code, out, errOut)
	}
	code, out, _ = runIn(t, dir, "--output", "json", "images", "list", "--has", "openssl>=3.0,<3.1")
	var rows []hasRow
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0].ID != id || rows[0].Version != "3.0.11-1~deb12u2" {
		t.Errorf("list --has --output json: %d %s", code, out)
	}
	if code, out, _ := runIn(t, dir, "--output", "json", "images", "list", "--has", "openssl", "--family", "imported"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --has with another filter: %d %q", code, out)
	}
	if code, out, _ := runIn(t, dir, "--output", "json", "images", "list", "--has", "openssl<3"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --has with no match: %d %q", code, out)
	}
	if code, _, errOut := runIn(t, dir, "images", "list", "--has", "openssl>=3,"); code != 2 || !strings.Contains(errOut, "--has") {
		t.Errorf("a bad query: %d %s", code, errOut)
	}

	os.WriteFile(filepath.Join(s.Dir(), id, "spdx.json"), []byte(`{"spdxVersion":"SPDX-2.2"}`), 0o600)
	if code, out, errOut := runIn(t, dir, "images", "sbom", "web-1"); code != 1 || out != "" || !strings.Contains(errOut, "changed since it was stored") {
		t.Errorf("a changed SBOM: %d %q %s", code, out, errOut)
	}

	if code, out, _ := runIn(t, dir, "gc", "--dry-run"); code != 0 || !strings.Contains(out, "1 documents of removed images [ami-0000000000000dead]") {
		t.Errorf("gc --dry-run: %d %s", code, out)
	}
	if code, _, errOut := runIn(t, dir, "images", "rm", "web-1"); code != 0 {
		t.Errorf("images rm: %d %s", code, errOut)
	}
	if code, out, errOut := runIn(t, dir, "gc"); code != 0 || !strings.Contains(out, "removed") || !strings.Contains(out, "1 documents of removed images [ami-0000000000000dead]") {
		t.Errorf("gc: %d %s %s", code, out, errOut)
	}
	if ids, err := s.Images(ctx); err != nil || len(ids) != 0 {
		t.Errorf("documents left after rm and gc: %v %v", ids, err)
	}
}
