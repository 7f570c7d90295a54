package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/aminator-go/aminator/internal/testutil/sbomschema"
)

// schemas are the official SPDX 2.3 and CycloneDX 1.6 schemas, compiled.
func schemas(t testing.TB) (spdx, cdx *jsonschema.Schema) { return sbomschema.Load(t) }

// documents writes both documents of inv and checks each against its
// schema.
func documents(t testing.TB, inv *Inventory, s Subject) (spdxDoc, cdxDoc []byte) {
	t.Helper()
	spdxDoc, err := SPDX(inv, s)
	if err != nil {
		t.Fatal(err)
	}
	cdxDoc, err = CycloneDX(inv, s)
	if err != nil {
		t.Fatal(err)
	}
	spdxSchema, cdxSchema := schemas(t)
	for _, d := range []struct {
		name   string
		schema *jsonschema.Schema
		doc    []byte
	}{{"SPDX 2.3", spdxSchema, spdxDoc}, {"CycloneDX 1.6", cdxSchema, cdxDoc}} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.doc))
		if err != nil {
			t.Fatalf("%s document is not JSON: %v", d.name, err)
		}
		if err := d.schema.Validate(v); err != nil {
			t.Fatalf("%s document does not validate against its schema: %v", d.name, err)
		}
	}
	return spdxDoc, cdxDoc
}

// subject is a Subject for the tests, naming pkg as the baked package.
func subject(pkg string) Subject {
	sum := sha256.Sum256([]byte("a disk"))
	return Subject{Image: "web-1.0", DiskDigest: hex.EncodeToString(sum[:]), Package: pkg,
		Created: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC), Tool: "aminator", Version: "test"}
}

// tree writes files (path relative to the root: content) into a new
// image root.
func tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// stanza is a dpkg status stanza.
func stanza(name, version, arch, status string, extra ...string) string {
	s := "Package: " + name + "\nStatus: " + status + "\nArchitecture: " + arch + "\nVersion: " + version + "\n"
	for _, e := range extra {
		s += e + "\n"
	}
	return s + "Description: test package\n a folded line\n"
}

// spdxPackages are the "name version" of the SPDX document's packages,
// but the image, and the licences declared, by name.
func spdxPackages(t testing.TB, doc []byte) (lines []string, licences map[string]string) {
	t.Helper()
	var d struct {
		Packages []struct {
			SPDXID, Name, VersionInfo, LicenseDeclared string
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	licences = map[string]string{}
	for _, p := range d.Packages {
		if p.SPDXID != "SPDXRef-"+imageID {
			lines = append(lines, p.Name+" "+p.VersionInfo)
			licences[p.Name] = p.LicenseDeclared
		}
	}
	return lines, licences
}

// cdxPackages are the "name version arch" of the CycloneDX document's
// components.
func cdxPackages(t testing.TB, doc []byte) []string {
	t.Helper()
	var d struct {
		Components []struct {
			Name, Version string
			Properties    []struct{ Name, Value string }
		}
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range d.Components {
		arch := ""
		for _, p := range c.Properties {
			if p.Name == propArch {
				arch = p.Value
			}
		}
		lines = append(lines, strings.Join([]string{c.Name, c.Version, arch}, " "))
	}
	return lines
}
