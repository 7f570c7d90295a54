package provenance

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBuildIsDeterministic(t *testing.T) {
	a, err := Build(bakeInputs("img-app", "img-base"))
	if err != nil {
		t.Fatal(err)
	}
	in := bakeInputs("img-app", "img-base")
	in.SBOMs[0], in.SBOMs[1] = in.SBOMs[1], in.SBOMs[0]
	in.Configuration = map[string]any{"tags": map[string]any{"a": "1", "b": "2"}, "root_volume_size": 8, "vm_type": "hvm"}
	in.Started = in.Started.In(time.FixedZone("X", 3600))
	b, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("same inputs, different bytes:\n%s\n%s", a, b)
	}
	in.Package.Version = "1.0-2"
	c, _ := Build(in)
	if bytes.Equal(a, c) {
		t.Fatal("a different package version gave the same bytes")
	}
}

func TestBuildSays(t *testing.T) {
	in := bakeInputs("img-app", "img-base")
	b, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	// The fields as the in-toto and SLSA specs name them, read as plain JSON.
	var doc struct {
		Type      string `json:"_type"`
		Subject   []map[string]any
		Predicate struct {
			BuildDefinition struct {
				BuildType            string
				ExternalParameters   map[string]any
				ResolvedDependencies []map[string]any
			}
			RunDetails struct {
				Builder struct {
					ID      string
					Version map[string]string
				}
				Metadata map[string]string
			}
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	p := doc.Predicate
	checks := map[string]bool{
		"statement type":    doc.Type == "https://in-toto.io/Statement/v1",
		"three subjects":    len(doc.Subject) == 3,
		"disk named by id":  doc.Subject[0]["name"] == "img-app" && doc.Subject[0]["digest"].(map[string]any)[DiskAlgorithm] == in.Image.DiskDigest,
		"sboms sorted":      doc.Subject[1]["name"] == "img-app.cdx.json" && doc.Subject[2]["name"] == "img-app.spdx.json",
		"build type":        p.BuildDefinition.BuildType == BuildTypeBake,
		"package param":     p.BuildDefinition.ExternalParameters["package"].(map[string]any)["sha256"] == in.Package.SHA256,
		"base param":        p.BuildDefinition.ExternalParameters["base"].(map[string]any)["diskDigest"] == in.Base.DiskDigest,
		"configuration":     p.BuildDefinition.ExternalParameters["configuration"].(map[string]any)["vm_type"] == "hvm",
		"two dependencies":  len(p.BuildDefinition.ResolvedDependencies) == 2,
		"package purl":      p.BuildDefinition.ResolvedDependencies[1]["uri"] == in.Package.URI,
		"builder":           p.RunDetails.Builder.ID == in.BuilderID && p.RunDetails.Builder.Version["aminator"] == "1.4.0",
		"bake id and times": p.RunDetails.Metadata["invocationId"] == "bake-img-app" && p.RunDetails.Metadata["finishedOn"] == "2026-12-07T10:01:30Z",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s: wrong in\n%s", what, b)
		}
	}
	st, err := ParseStatement(b)
	if err != nil || st.Base().ID != "img-base" {
		t.Fatalf("ParseStatement: %v", err)
	}
}

func TestFoundationStatement(t *testing.T) {
	b, err := Build(foundationInputs("img-found"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Predicate.BuildDefinition.BuildType != BuildTypeFoundation || st.Base() != nil || len(st.Predicate.BuildDefinition.ResolvedDependencies) != 0 {
		t.Fatalf("not a foundation's statement: %s", b)
	}
}

func TestBuildRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Inputs)
		want string
	}{
		"no image id":         {func(in *Inputs) { in.Image.ID = "" }, "no image id"},
		"short disk digest":   {func(in *Inputs) { in.Image.DiskDigest = "abc" }, "not 64 lower-case hex"},
		"upper-case digest":   {func(in *Inputs) { in.Image.DiskDigest = strings.ToUpper(in.Image.DiskDigest) }, "not 64 lower-case hex"},
		"sbom without type":   {func(in *Inputs) { in.SBOMs[0].MediaType = "" }, "name and a media type"},
		"bad sbom digest":     {func(in *Inputs) { in.SBOMs[1].SHA256 = "" }, "SBOM img-app.cdx.json"},
		"base, no package":    {func(in *Inputs) { in.Package = nil }, "both a base and a package"},
		"bad base digest":     {func(in *Inputs) { in.Base.DiskDigest = "x" }, "base img-base disk"},
		"bad package digest":  {func(in *Inputs) { in.Package.SHA256 = "x" }, "package app"},
		"no package version":  {func(in *Inputs) { in.Package.Version = "" }, "version are required"},
		"relative builder id": {func(in *Inputs) { in.BuilderID = "bakery" }, "not an absolute URI"},
		"no tool version":     {func(in *Inputs) { in.Version = "" }, "no tool and version"},
		"no bake id":          {func(in *Inputs) { in.BakeID = "" }, "no bake id"},
		"finish before start": {func(in *Inputs) { in.Finished = in.Started.Add(-1) }, "not a build's times"},
		"unencodable config":  {func(in *Inputs) { in.Configuration["x"] = func() {} }, "encode the statement"},
	} {
		t.Run(name, func(t *testing.T) {
			in := bakeInputs("img-app", "img-base")
			tc.edit(&in)
			_, err := Build(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build: %v, want an error with %q", err, tc.want)
			}
		})
	}
	in := foundationInputs("img-found")
	in.Configuration = nil
	if _, err := Build(in); err == nil || !strings.Contains(err.Error(), "needs its configuration") {
		t.Fatalf("a foundation without configuration: %v", err)
	}
}

// TestParseStatementRefuses checks the in-toto schema check and ours.
func TestParseStatementRefuses(t *testing.T) {
	good, _ := Build(bakeInputs("img-app", "img-base"))
	for name, tc := range map[string]struct{ from, to, want string }{
		"statement v0.1":    {`"https://in-toto.io/Statement/v1"`, `"https://in-toto.io/Statement/v0.1"`, "type"},
		"other predicate":   {`"https://slsa.dev/provenance/v1"`, `"https://slsa.dev/provenance/v0.2"`, "predicate type"},
		"unknown field":     {`"subject":`, `"extra":1,"subject":`, "unknown field"},
		"digest not hex":    {`"sha256":"`, `"sha256":"zz`, "digest"},
		"no builder id":     {`"id":"https://github.com/aminator-go/aminator/builder/test-host"`, `"id":""`, "builder.id required"},
		"foreign buildType": {BuildTypeBake, "https://example.org/other", "not aminator's"},
	} {
		t.Run(name, func(t *testing.T) {
			b := bytes.Replace(good, []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(b, good) {
				t.Fatalf("%q not in the statement", tc.from)
			}
			if _, err := ParseStatement(b); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseStatement: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestBuildTypesAreDocumented ties the buildType URIs to their sections.
func TestBuildTypesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/provenance.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, bt := range []string{BuildTypeBake, BuildTypeFoundation} {
		_, anchor, _ := strings.Cut(bt, "#")
		heading := "## " + strings.Replace(anchor, "-", " ", 1)
		if !strings.HasPrefix(bt, "https://github.com/aminator-go/aminator/blob/main/docs/provenance.md#") ||
			!bytes.Contains(doc, []byte("\n"+heading+"\n")) || !bytes.Contains(doc, []byte("`"+bt+"`")) {
			t.Errorf("%s: docs/provenance.md has no section %q naming it", bt, heading)
		}
	}
}

// A repository package whose file the package manager did not keep (dnf)
// is named by its purl alone; without a purl it is refused.
func TestPackageByPurlAlone(t *testing.T) {
	in := bakeInputs("img-app", "img-base")
	in.Package.SHA256 = ""
	b, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"sha256":""`)) || !bytes.Contains(b, []byte(in.Package.URI)) {
		t.Errorf("package by purl:\n%s", b)
	}
	in.Package.URI = ""
	if _, err := Build(in); err == nil || !strings.Contains(err.Error(), "package app SHA-256") {
		t.Errorf("no digest and no purl: %v", err)
	}
}

// An imported disk's statement says so by its build type, and reads back;
// an import with a base is refused.
func TestImportStatement(t *testing.T) {
	in := foundationInputs("img-imported")
	in.Import = true
	b, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(b)
	if err != nil || st.Predicate.BuildDefinition.BuildType != BuildTypeImport || st.Base() != nil {
		t.Fatalf("import statement: %v %+v", err, st)
	}
	in = bakeInputs("img-app", "img-base")
	in.Import = true
	if _, err := Build(in); err == nil {
		t.Error("an import with a base was accepted")
	}
}
