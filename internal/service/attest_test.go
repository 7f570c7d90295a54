package service

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/image/attest"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

func openAttest(t *testing.T, cloud string) *attest.Store {
	t.Helper()
	s, err := OpenAttest(&config.Config{StateDir: t.TempDir(), Context: config.Context{Region: "local"}}, cloud)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putDocs(t *testing.T, s *attest.Store, id string) {
	t.Helper()
	inv := &sbom.Inventory{Kind: sbom.KindDeb, Packages: []sbom.Package{{Name: "openssl", Version: "3.0.11-1~deb12u2", Arch: "amd64"}}}
	if err := s.Put(context.Background(), id, inv, attest.Doc{Kind: attest.KindSPDX, Body: []byte(`{"spdxVersion":"SPDX-2.3"}`)}); err != nil {
		t.Fatal(err)
	}
}

// Removing an image removes its documents too; an image without any is
// no error.
func TestRemoveImageDeletesItsDocuments(t *testing.T) {
	ctx := context.Background()
	f := fakecloud.New()
	s := openAttest(t, "fake")
	one, two := addImage(t, f, "one", plugin.Tags{}), addImage(t, f, "two", plugin.Tags{})
	putDocs(t, s, one.ID)
	r, err := RemoveImage(ctx, f, s, "one", false)
	if err != nil || !r.Documents {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := SBOM(ctx, s, one.ID, attest.KindSPDX); !errors.Is(err, ErrNoSBOM) {
		t.Errorf("SBOM of a removed image: %v", err)
	}
	if r, err := RemoveImage(ctx, f, s, two.ID, true); err != nil || !r.Documents {
		t.Errorf("an image without documents: %+v %v", r, err)
	}
}

func TestSBOM(t *testing.T) {
	ctx := context.Background()
	s := openAttest(t, "")
	putDocs(t, s, "ami-1")
	if d, err := SBOM(ctx, s, "ami-1", attest.KindSPDX); err != nil || !strings.Contains(string(d.Body), "SPDX-2.3") {
		t.Errorf("spdx: %s %v", d.Body, err)
	}
	_, err := SBOM(ctx, s, "ami-1", attest.KindCycloneDX)
	if !errors.Is(err, ErrNoSBOM) || !errors.Is(err, attest.ErrNotFound) || !strings.Contains(err.Error(), "image ami-1 has no cyclonedx SBOM: it was made before aminator wrote SBOMs, or imported") {
		t.Errorf("no cyclonedx: %v", err)
	}
	if _, err := SBOM(ctx, s, "ami-1", attest.KindProvenance); err == nil {
		t.Error("provenance as an SBOM format: no error")
	}
}

// gc plans the documents of images the cloud no longer has, only those
// Put in that cloud, and keeps those of an image that is back.
func TestAttestGC(t *testing.T) {
	ctx := context.Background()
	f := fakecloud.New()
	s := openAttest(t, "fake")
	kept, gone := addImage(t, f, "kept", plugin.Tags{}), addImage(t, f, "gone", plugin.Tags{})
	putDocs(t, s, kept.ID)
	putDocs(t, s, gone.ID)
	putDocs(t, s, "ami-0ddba11")
	putDocs(t, s.In("other"), "ami-0therc10ud")
	if _, err := RemoveImage(ctx, f, nil, gone.ID, false); err != nil {
		t.Fatal(err)
	}
	p, err := PlanAttestGC(ctx, s, f, "fake")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Planned().IDs(gcreport.Attestation); strings.Join(got, " ") != gone.ID+" ami-0ddba11" {
		t.Fatalf("planned %v", got)
	}
	var text strings.Builder
	p.Planned().WriteText(&text)
	if !strings.Contains(text.String(), "would remove 2 documents of removed images") {
		t.Errorf("dry run: %s", text.String())
	}
	if ids, _ := s.Images(ctx); len(ids) != 3 {
		t.Fatalf("a plan removed something: %v", ids)
	}
	// gc re-checks each image: one it cannot look up now keeps its
	// documents.
	f.Hook = func(call string) error {
		if call == "Image ami-0ddba11" {
			return errors.New("the cloud is unreachable")
		}
		return nil
	}
	r, err := gcreport.Join(p).Execute(ctx)
	if err != nil || strings.Join(r.IDs(gcreport.Attestation), " ") != gone.ID || len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0].Reason, "unreachable") {
		t.Errorf("gc: %+v %v", r, err)
	}
	if ids, _ := s.Images(ctx); strings.Join(ids, " ") != kept.ID+" ami-0ddba11" {
		t.Errorf("after gc: %v", ids)
	}
	if ids, _ := s.In("").Images(ctx); len(ids) != 3 {
		t.Errorf("after gc, the other cloud's documents: %v", ids)
	}
}

func openAttestIn(t *testing.T, cfg *config.Config) *attest.Store {
	t.Helper()
	s, err := OpenAttest(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
