package attest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "attest"))
}

func inventory(kind sbom.Kind, pkgs ...string) *sbom.Inventory {
	inv := &sbom.Inventory{Kind: kind}
	for _, p := range pkgs {
		f := strings.Fields(p) // NAME VERSION [ARCH]
		arch := "amd64"
		if len(f) > 2 {
			arch = f[2]
		}
		inv.Packages = append(inv.Packages, sbom.Package{Name: f[0], Version: f[1], Arch: arch})
	}
	return inv
}

// docs are the three documents of an image, their bodies naming gen.
func docs(gen string) []Doc {
	return []Doc{
		{Kind: KindSPDX, Body: []byte(`{"spdxVersion":"SPDX-2.3","gen":"` + gen + `"}`)},
		{Kind: KindCycloneDX, Body: []byte(`{"bomFormat":"CycloneDX","gen":"` + gen + `"}`)},
		{Kind: KindProvenance, MediaType: MediaDSSE, Body: []byte(`{"payloadType":"application/vnd.in-toto+json","gen":"` + gen + `"}`)},
	}
}

func mustGet(t *testing.T, s *Store, id, kind string) Doc {
	t.Helper()
	d, err := s.Get(context.Background(), id, kind)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// leftovers are the store directory's entries other than its index and
// its images' directories.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if fi, err := os.Stat(s.Dir()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store directory: %v %v, want mode 0700", fi, err)
	}
	in := docs("1")
	if err := s.Put(ctx, "ami-0123456789abcdef0", inventory(sbom.KindDeb, "openssl 3.0.11-1~deb12u2"), in...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Docs(ctx, "ami-0123456789abcdef0")
	if err != nil {
		t.Fatal(err)
	}
	wantMedia := []string{MediaSPDX, MediaCycloneDX, MediaDSSE}
	if len(got) != 3 {
		t.Fatalf("Docs: %d documents, want 3", len(got))
	}
	for i, d := range got {
		if d.Kind != in[i].Kind || string(d.Body) != string(in[i].Body) || d.MediaType != wantMedia[i] || d.SHA256 != digest(in[i].Body) {
			t.Errorf("document %d: %+v", i, d)
		}
		if g := mustGet(t, s, "ami-0123456789abcdef0", d.Kind); string(g.Body) != string(d.Body) {
			t.Errorf("Get %s: %s", d.Kind, g.Body)
		}
	}
	for _, f := range []string{"spdx.json", "cyclonedx.json", "provenance.dsse.json"} {
		if _, err := os.Stat(filepath.Join(s.Dir(), "ami-0123456789abcdef0", f)); err != nil {
			t.Error(err)
		}
	}
	ids, err := s.Images(ctx)
	if err != nil || len(ids) != 1 || ids[0] != "ami-0123456789abcdef0" {
		t.Fatalf("Images: %v %v", ids, err)
	}
	_, err = s.Get(ctx, "ami-none", KindSPDX)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, plugin.ErrNotFound) || !strings.Contains(err.Error(), "ami-none has no spdx document") {
		t.Fatalf("Get of an image without documents: %v", err)
	}
	if _, err := s.Docs(ctx, "ami-none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Docs of an image without documents: %v", err)
	}
	if _, err := s.Get(ctx, "ami-0123456789abcdef0", "sbom"); err == nil {
		t.Fatal("Get of an unknown kind: no error")
	}
}

// A second Put replaces the image's documents and packages: a kind it
// does not give is gone.
func TestPutReplaces(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Put(ctx, "ami-1", inventory(sbom.KindDeb, "openssl 3.0.9-1"), docs("1")...); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ami-1", inventory(sbom.KindDeb, "openssl 3.0.11-1"), docs("2")[0]); err != nil {
		t.Fatal(err)
	}
	if d := mustGet(t, s, "ami-1", KindSPDX); !strings.Contains(string(d.Body), `"gen":"2"`) {
		t.Errorf("spdx after the second Put: %s", d.Body)
	}
	if _, err := s.Get(ctx, "ami-1", KindCycloneDX); !errors.Is(err, ErrNotFound) {
		t.Errorf("cyclonedx after a Put without it: %v", err)
	}
	q, _ := ParseQuery("openssl")
	if m, err := s.Has(ctx, q); err != nil || len(m) != 1 || m[0].Version != "3.0.11-1" {
		t.Errorf("Has after the second Put: %v %v", m, err)
	}
	if l := leftovers(t, s.Dir()); l != nil {
		t.Errorf("leftovers: %v", l)
	}
}

func TestPutChecksDocuments(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	bad := []struct {
		name string
		docs []Doc
		want string
	}{
		{"wrong digest", []Doc{{Kind: KindSPDX, Body: []byte("{}"), SHA256: strings.Repeat("0", 64)}}, "SHA-256"},
		{"unknown kind", []Doc{{Kind: "sbom", Body: []byte("{}")}}, `kind "sbom"`},
		{"twice", []Doc{{Kind: KindSPDX, Body: []byte("{}")}, {Kind: KindSPDX, Body: []byte("{}")}}, "two spdx"},
	}
	for _, c := range bad {
		if err := s.Put(ctx, "ami-1", nil, c.docs...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
	if ids, _ := s.Images(ctx); len(ids) != 0 {
		t.Errorf("refused Puts stored %v", ids)
	}
}

func TestTamperedFileIsAnError(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Put(ctx, "ami-1", nil, docs("1")...); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(s.Dir(), "ami-1", "cyclonedx.json")
	if err := os.WriteFile(file, []byte(`{"bomFormat":"CycloneDX","gen":"X"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, "ami-1", KindCycloneDX)
	if err == nil || !strings.Contains(err.Error(), "image ami-1: cyclonedx document") || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("Get of a changed file: %v", err)
	}
	if _, err := s.Docs(ctx, "ami-1"); err == nil {
		t.Fatal("Docs with a changed file: no error")
	}
	mustGet(t, s, "ami-1", KindSPDX) // the others are still served
	os.Remove(file)
	if _, err := s.Get(ctx, "ami-1", KindCycloneDX); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a removed file: %v, want an error that is not ErrNotFound", err)
	}
}

func TestBadImageIDsAreRefused(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	s := open(t, filepath.Join(parent, "attest"))
	for _, id := range []string{"", "../escape", "a/b", "/abs", "..", ".hidden", "a..b", "a\\b", "a b", "ami\x00", strings.Repeat("a", 129), "index.db", "index.db-wal"} {
		checks := map[string]error{
			"Put":    s.Put(ctx, id, nil, docs("1")...),
			"Delete": s.Delete(ctx, id),
		}
		_, checks["Get"] = s.Get(ctx, id, KindSPDX)
		_, checks["Docs"] = s.Docs(ctx, id)
		for op, err := range checks {
			if err == nil || !strings.Contains(err.Error(), "is not valid") {
				t.Errorf("%s(%q): %v, want a clear refusal", op, id, err)
			}
		}
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Errorf("something was written beside the store: %v", ents)
	}
	if ids, _ := s.Images(ctx); len(ids) != 0 {
		t.Errorf("stored: %v", ids)
	}
}

func TestDeleteIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Put(ctx, "ami-1", inventory(sbom.KindDeb, "bash 5.2.15-2+b7"), docs("1")...); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Delete(ctx, "ami-1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "ami-never"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "ami-1", KindSPDX); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	q, _ := ParseQuery("bash")
	if m, _ := s.Has(ctx, q); len(m) != 0 {
		t.Errorf("Has after Delete: %v", m)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM pkgs`).Scan(&n); err != nil || n != 0 {
		t.Errorf("packages no image carries: %d %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "ami-1")); !os.IsNotExist(err) {
		t.Errorf("the image's directory: %v", err)
	}
	if l := leftovers(t, s.Dir()); l != nil {
		t.Errorf("leftovers: %v", l)
	}
}

// A store seen In a cloud lists only the images Put through that view,
// as gc of that cloud wants; the whole store lists them all.
func TestImagesInACloud(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for cloud, id := range map[string]string{"local": "ami-local", "ec2": "ami-ec2", "": "ami-unsaid"} {
		if err := s.In(cloud).Put(ctx, id, nil, docs(id)[0]); err != nil {
			t.Fatal(err)
		}
	}
	for cloud, want := range map[string]string{"local": "ami-local", "ec2": "ami-ec2", "": "ami-ec2 ami-local ami-unsaid"} {
		ids, err := s.In(cloud).Images(ctx)
		if err != nil || strings.Join(ids, " ") != want {
			t.Errorf("Images in %q: %v %v, want %s", cloud, ids, err, want)
		}
	}
	if ids, _ := s.Images(ctx); len(ids) != 3 {
		t.Errorf("Images: %v", ids)
	}
}
