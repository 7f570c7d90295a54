package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/image/provenance"
	"github.com/aminator-go/aminator/internal/testutil"
)

// The bakery signs with its own key (serve --signing-key) and its workers
// verify every image they bake against its trust file (--trust-file):
// serve logs the key's id; a bake's record says verified by the bakery's
// signer with that key, its lineage the image and its imported base (no
// provenance); with a trust file that lists another key but not this one the bake still
// completes and its record says failed: unknown signer.
// (After TestBakery, which counts the tokens: this file sorts after it.)
func TestBakerySignsAndVerifies(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "bakery.pem")
	signer, err := provenance.CreateKey(key, provenance.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	keyID, _ := signer.KeyID()
	trust, others := filepath.Join(dir, "trust.yml"), filepath.Join(dir, "others.yml")
	if err := provenance.TrustKey(trust, "bakery", signer.Public()); err != nil {
		t.Fatal(err)
	}
	other, err := provenance.CreateKey(filepath.Join(dir, "other.pem"), provenance.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := provenance.TrustKey(others, "other", other.Public()); err != nil {
		t.Fatal(err)
	}
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bakery-signed", Version: "1.0", Files: map[string]string{"/opt/signed": "s\n"}})

	bakeWith := func(trustFile string, name string) *bakery.Record {
		t.Helper()
		addr := freeAddr(t)
		stop, printed := shared().ServeLog(t, "--embedded-nats", "--listen", addr, "--worker-region", "local", "--workers", "1",
			"--package-dir", dir, "--signing-key", key, "--trust-file", trustFile)
		defer stop()
		c := bakeryClient{T: t, URL: "http://" + addr}
		waitAPI(t, c)
		c.Token = mustOK(t, aminate(t, "bakery", "token", "create", "--team", "signed"))
		_, sub := c.Submit(bakery.Request{Package: deb, BaseID: b, Region: "local", Rebake: name != "", Name: name})
		rec := c.Wait(sub.Bake.ID, bakery.Completed, bakery.Failed)
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(printed(), keyID) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(printed(), "workers sign images") || !strings.Contains(printed(), keyID) {
			t.Errorf("serve does not log the key id %s it signs with:\n%s", keyID, printed())
		}
		return rec
	}

	rec := bakeWith(trust, "")
	p := rec.Provenance
	if rec.State != bakery.Completed || p == nil {
		t.Fatalf("bake %s %q, provenance %+v", rec.State, rec.Error, p)
	}
	if !p.OK || p.Signer != "bakery" || p.KeyID != keyID || p.LineageOK || len(p.Lineage) != 2 {
		t.Errorf("the verdict: %+v", p)
	} else if l := p.Lineage; l[0].Image != rec.ImageID || l[0].Package != "aminator-bakery-signed=1.0" || l[1].Image != b || !strings.Contains(l[1].Error, "no provenance") {
		t.Errorf("the lineage: %+v", l)
	}
	if len(rec.Images) != 1 || rec.Images[0].Provenance == nil || !rec.Images[0].Provenance.OK {
		t.Errorf("the image's verdict: %+v", rec.Images)
	}
	// aminate verify with the bakery's trust file agrees (and fails on the base).
	if r := aminate(t, "verify", rec.ImageID, "--trust", trust); !strings.Contains(r.Stdout, "ok   "+rec.ImageID) || !strings.Contains(r.Stdout, "signed by bakery ("+keyID+")") {
		t.Errorf("verify: %s\n%s", r.Stdout, r.Stderr)
	}

	rec = bakeWith(others, "unknown-signer")
	if p := rec.Provenance; rec.State != bakery.Completed || p == nil || p.OK || !strings.Contains(p.Error, "unknown signer") {
		t.Errorf("with a trust file without the key: %s %q, provenance %+v", rec.State, rec.Error, p)
	}
}
