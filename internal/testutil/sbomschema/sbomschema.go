// Package sbomschema gives tests the SPDX 2.3 and CycloneDX 1.6 JSON
// schemas, the projects' own, byte for byte, compiled:
//   - schema/spdx-schema-2.3.json: schemas/spdx-schema.json of
//     github.com/spdx/spdx-spec at tag v2.3 (commit
//     aadf3b0b8dbbabdb4d880b0fc714255fea436ff7);
//   - schema/bom-1.6.schema.json, spdx.schema.json, jsf-0.82.schema.json:
//     schema/ of github.com/CycloneDX/specification at tag 1.6.2 (commit
//     e833d732337dd33aceb45ff1991f896796f1e5e7); the bom schema refers to
//     the other two by these names.
package sbomschema

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schemas' ids.
const (
	SPDXID      = "http://spdx.org/rdf/terms/2.3"
	CycloneDXID = "http://cyclonedx.org/schema/bom-1.6.schema.json"
)

// Load compiles both schemas, asserting formats (date-time, uri,
// iri-reference) as well as structure.
func Load(t testing.TB) (spdx, cdx *jsonschema.Schema) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for id, file := range map[string]string{
		SPDXID:      "spdx-schema-2.3.json",
		CycloneDXID: "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(filepath.Dir(here), "schema", file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if spdx, err = c.Compile(SPDXID); err != nil {
		t.Fatal(err)
	}
	if cdx, err = c.Compile(CycloneDXID); err != nil {
		t.Fatal(err)
	}
	return spdx, cdx
}

// Validate checks doc against schema, failing the test with the schema's
// own words.
func Validate(t testing.TB, schema *jsonschema.Schema, what string, doc []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", what, err)
	}
	if err := schema.Validate(v); err != nil {
		t.Errorf("%s does not validate against its schema: %v", what, err)
	}
}
