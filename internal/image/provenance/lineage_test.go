package provenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// store is a Resolver over records by image id.
type store map[string]Record

func (s store) resolve(_ context.Context, id string) (Record, error) {
	r, ok := s[id]
	if !ok {
		return Record{}, fmt.Errorf("image %s not found", id)
	}
	return r, nil
}

func record(t *testing.T, in Inputs, s Signer) Record {
	e := expect(in)
	return Record{Envelope: signed(t, in, s), DiskDigest: e.DiskDigest, SBOMSHA256: e.SBOMSHA256}
}

// chain is img-found ← img-base ← img-app, all signed by key.
func chain(t *testing.T, key Signer) store {
	return store{
		"img-found": record(t, foundationInputs("img-found"), key),
		"img-base":  record(t, bakeInputs("img-base", "img-found"), key),
		"img-app":   record(t, bakeInputs("img-app", "img-base"), key),
	}
}

func TestLineage(t *testing.T) {
	key := newKey(t, Ed25519)
	v := Lineage(context.Background(), "img-app", chain(t, key).resolve, trusting(t, key), now)
	if !LineageOK(v) || len(v) != 3 {
		t.Fatalf("verdicts %+v", v)
	}
	id, _ := key.KeyID()
	app, found := v[0], v[2]
	if app.ImageID != "img-app" || app.Base != "img-base" || app.Package != "app=1.0-1" || app.Signer != "signer-a" || app.KeyID != id ||
		app.BakeID != "bake-img-app" || app.Finished != "2026-12-07T10:01:30Z" || app.BuildType != BuildTypeBake {
		t.Errorf("app verdict %+v", app)
	}
	if found.ImageID != "img-found" || found.BuildType != BuildTypeFoundation || found.Base != "" {
		t.Errorf("foundation verdict %+v", found)
	}
	if b, err := json.Marshal(v[0]); err != nil || !strings.Contains(string(b), `"ok":true`) {
		t.Errorf("verdict as JSON: %s, %v", b, err)
	}
}

func TestLineageFails(t *testing.T) {
	key, other := newKey(t, Ed25519), newKey(t, Ed25519)
	for name, tc := range map[string]struct {
		edit   func(store)
		trust  *Trust
		ok     int // verdicts that pass before the failing one
		failed string
		is     error
		says   string
	}{
		"base disk changed since": {edit: func(s store) { r := s["img-base"]; r.DiskDigest = digest("changed"); s["img-base"] = r },
			ok: 0, failed: "img-app", is: ErrDigestMismatch, says: "base img-base"},
		"base signed by a stranger": {edit: func(s store) { s["img-base"] = record(t, bakeInputs("img-base", "img-found"), other) },
			ok: 1, failed: "img-base", is: ErrUnknownSigner},
		"base SBOM edited": {edit: func(s store) { r := s["img-base"]; r.SBOMSHA256 = []string{digest("edited")}; s["img-base"] = r },
			ok: 1, failed: "img-base", is: ErrDigestMismatch, says: "SBOM"},
		"foundation gone": {edit: func(s store) { delete(s, "img-found") },
			ok: 2, failed: "img-found", says: "find the provenance of img-found: image img-found not found"},
		"foundation envelope truncated": {edit: func(s store) { r := s["img-found"]; r.Envelope = r.Envelope[:10]; s["img-found"] = r },
			ok: 2, failed: "img-found", is: ErrEnvelope},
		"lineage loops": {edit: func(s store) { s["img-found"] = record(t, bakeInputs("img-found", "img-app"), key) },
			ok: 3, failed: "img-app", is: ErrStatement, says: "loops"},
		"every signer expired": {trust: func() *Trust { tr := &Trust{}; tr.Add("old", key.Public(), t0.AddDate(-1, 0, 0), t0); return tr }(),
			ok: 0, failed: "img-app", is: ErrSignerExpired},
	} {
		t.Run(name, func(t *testing.T) {
			s := chain(t, key)
			if tc.edit != nil {
				tc.edit(s)
			}
			tr := tc.trust
			if tr == nil {
				tr = trusting(t, key)
			}
			v := Lineage(context.Background(), "img-app", s.resolve, tr, now)
			if LineageOK(v) || len(v) != tc.ok+1 {
				t.Fatalf("verdicts %+v", v)
			}
			last := v[len(v)-1]
			if last.OK || last.ImageID != tc.failed || (tc.is != nil && !errors.Is(last.Err, tc.is)) || !strings.Contains(last.Error, tc.says) {
				t.Fatalf("failing verdict %+v, want %s failing with %v saying %q", last, tc.failed, tc.is, tc.says)
			}
			for _, x := range v[:tc.ok] {
				if !x.OK {
					t.Fatalf("verdict %+v should pass", x)
				}
			}
		})
	}
}

func TestLineageCancelled(t *testing.T) {
	key := newKey(t, Ed25519)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v := Lineage(ctx, "img-app", chain(t, key).resolve, trusting(t, key), now)
	if len(v) != 1 || !errors.Is(v[0].Err, context.Canceled) {
		t.Fatalf("verdicts %+v", v)
	}
}
