package bake

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/image/sbom"
	"github.com/aminator-go/aminator/internal/plugin"
)

// memStore is an AttestStore in memory, which can be told to fail.
type memStore struct {
	docs map[string]Documents
	fail error
}

func (m *memStore) Keep(_ context.Context, id string, _ *sbom.Inventory, d Documents) error {
	if m.fail != nil {
		return m.fail
	}
	m.docs[id] = d
	return nil
}
func (m *memStore) Forget(_ context.Context, id string) error { delete(m.docs, id); return nil }
func (m *memStore) Licences(context.Context, string) (map[string]string, error) {
	return nil, errors.New("none")
}

// attestState is the state of a bake that registered an image on the
// local cloud (the base stands in for it: a real snapshot, so a real
// disk digest) and read its inventory.
func attestState(t *testing.T, store *memStore) *State {
	env, _, base := testEnv(t)
	key, err := provenance.CreateKey(filepath.Join(t.TempDir(), "k.pem"), provenance.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	env.Attest = &Attester{Store: store, Signer: key, BuilderID: "urn:aminator:host:test", Tool: "aminator", Version: "test"}
	s := NewState(env, Request{BakeID: "bake-1", Package: "app"}, slog.New(slog.DiscardHandler))
	s.Base, s.BaseRoot, s.Image = base, base.Root(), base
	s.Snapshot = &plugin.Snapshot{ID: base.Root().SnapshotID}
	s.Package = &plugin.PackageInfo{Name: "app", FullVersion: "1.0-1", SHA256: strings.Repeat("ab", 32)}
	s.Inventory = &sbom.Inventory{Kind: sbom.KindDeb, Packages: []sbom.Package{{Name: "app", Version: "1.0-1", Arch: "amd64", PURL: "pkg:deb/debian/app@1.0-1?arch=amd64", License: sbom.NoAssertion}}}
	return s
}

// The step keeps signed documents whose statement names the image's
// disk digest (the store's, from its chunk hashes), the base's, the
// package and the bake's settings; a later failure removes them.
func TestAttestImageKeepsSignedDocuments(t *testing.T) {
	store := &memStore{docs: map[string]Documents{}}
	s := attestState(t, store)
	if err := s.Run(context.Background(), AttestImage{}); err != nil {
		t.Fatal(err)
	}
	d, ok := store.docs[s.Image.ID]
	if !ok || len(d.SPDX) == 0 || len(d.CycloneDX) == 0 || len(d.Provenance) == 0 {
		t.Fatalf("documents kept: %v", ok)
	}
	digest, err := s.Env.Cloud.(plugin.DiskDigests).DiskDigest(context.Background(), s.Snapshot.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{digest, `"name":"app"`, "bake-1", `"environment":"test"`} {
		if !strings.Contains(string(envelopePayload(t, d.Provenance)), want) {
			t.Errorf("the statement lacks %s", want)
		}
	}
	if !strings.Contains(string(d.SPDX), digest) {
		t.Errorf("the SPDX document lacks the disk digest")
	}
	if _, err := s.Undo.Finish(context.Background(), true, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.docs[s.Image.ID]; ok {
		t.Error("a failed bake left its image's documents")
	}
}

// A store that cannot keep them fails the step, saying so.
func TestAttestImageStoreFails(t *testing.T) {
	store := &memStore{docs: map[string]Documents{}, fail: errors.New("disk full")}
	s := attestState(t, store)
	err := s.Run(context.Background(), AttestImage{})
	if err == nil || !strings.Contains(err.Error(), "keep the SBOMs and provenance") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error %v", err)
	}
}

func envelopePayload(t *testing.T, env []byte) []byte {
	t.Helper()
	var e struct {
		Payload []byte `json:"payload"`
	}
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	return e.Payload
}

// A package the inventory does not list (rpm's database in a Debian image
// that carries rpm), installed from a repository whose manager kept no
// file (dnf), is named by a generic purl: the image is still attested.
func TestAttestPackageNotInInventory(t *testing.T) {
	store := &memStore{docs: map[string]Documents{}}
	s := attestState(t, store)
	s.Package = &plugin.PackageInfo{Name: "aminator-rpmrepo", FullVersion: "3.1-7", Arch: "noarch"}
	if err := s.Run(context.Background(), AttestImage{}); err != nil {
		t.Fatal(err)
	}
	if p := string(envelopePayload(t, store.docs[s.Image.ID].Provenance)); !strings.Contains(p, "pkg:generic/aminator-rpmrepo@3.1-7?arch=noarch") {
		t.Errorf("the package is not named by a generic purl:\n%s", p)
	}
}
