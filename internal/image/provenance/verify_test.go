package provenance

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

func TestSignVerify(t *testing.T) {
	for _, alg := range []string{Ed25519, ECDSAP256} {
		t.Run(alg, func(t *testing.T) {
			key := newKey(t, alg)
			in := bakeInputs("img-app", "img-base")
			res, err := Verify(signed(t, in, key), trusting(t, newKey(t, Ed25519), key), now, expect(in))
			if err != nil {
				t.Fatal(err)
			}
			id, _ := key.KeyID()
			if res.Signer.Name != "signer-b" || res.Signer.KeyID != id || res.Statement.Base().ID != "img-base" {
				t.Fatalf("verified as %+v", res.Signer)
			}
		})
	}
}

func TestEd25519EnvelopeIsDeterministic(t *testing.T) {
	key := newKey(t, Ed25519)
	in := bakeInputs("img-app", "img-base")
	if a, b := signed(t, in, key), signed(t, in, key); string(a) != string(b) {
		t.Fatalf("two envelopes of one statement differ:\n%s\n%s", a, b)
	}
}

// editEnvelope decodes an envelope, lets edit change it and encodes it.
func editEnvelope(t *testing.T, b []byte, edit func(*dsse.Envelope)) []byte {
	t.Helper()
	var env dsse.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	edit(&env)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flipByte(t *testing.T, b64 string, at int) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	b[at%len(b)] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func TestVerifyTampering(t *testing.T) {
	key, other := newKey(t, Ed25519), newKey(t, ECDSAP256)
	in := bakeInputs("img-app", "img-base")
	good := signed(t, in, key)
	trust := trusting(t, key)
	otherID, _ := other.KeyID()
	keyID, _ := key.KeyID()
	window := func(nb, na time.Time) *Trust {
		tr := &Trust{}
		if err := tr.Add("bakery", key.Public(), nb, na); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	forged, _ := Sign(context.Background(), []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), key)
	for name, tc := range map[string]struct {
		env   []byte
		trust *Trust
		want  Expect
		is    error
		says  string
	}{
		"flipped payload byte":      {env: editEnvelope(t, good, func(e *dsse.Envelope) { e.Payload = flipByte(t, e.Payload, 200) }), is: ErrBadSignature, says: "payload or signature was changed"},
		"flipped signature byte":    {env: editEnvelope(t, good, func(e *dsse.Envelope) { e.Signatures[0].Sig = flipByte(t, e.Signatures[0].Sig, 7) }), is: ErrBadSignature},
		"changed payload type":      {env: editEnvelope(t, good, func(e *dsse.Envelope) { e.PayloadType = "application/json" }), is: ErrEnvelope, says: "payload type"},
		"wrong key":                 {env: signed(t, in, other), is: ErrUnknownSigner, says: otherID},
		"wrong key, keyid stripped": {env: editEnvelope(t, signed(t, in, other), func(e *dsse.Envelope) { e.Signatures[0].KeyID = "" }), is: ErrBadSignature},
		"wrong key claiming ours":   {env: editEnvelope(t, signed(t, in, other), func(e *dsse.Envelope) { e.Signatures[0].KeyID = keyID }), is: ErrBadSignature, says: "signer-a"},
		"unknown signer":            {env: good, trust: trusting(t, other), is: ErrUnknownSigner, says: "not in the trust file"},
		"expired signer":            {env: good, trust: window(t0.Add(-48*time.Hour), t0), is: ErrSignerExpired, says: "expired at 2026-12-07T10:00:00Z"},
		"signer not yet valid":      {env: good, trust: window(now.Add(time.Minute), time.Time{}), is: ErrSignerExpired, says: "not valid before"},
		"disk digest differs":       {env: good, want: Expect{ImageID: "img-app", DiskDigest: digest("another disk")}, is: ErrDigestMismatch, says: "disk digest"},
		"SBOM digest differs":       {env: good, want: Expect{ImageID: "img-app", DiskDigest: in.Image.DiskDigest, SBOMSHA256: []string{digest("edited sbom")}}, is: ErrDigestMismatch, says: "an SBOM's SHA-256"},
		"another image's":           {env: good, want: Expect{ImageID: "img-other", DiskDigest: in.Image.DiskDigest}, is: ErrDigestMismatch, says: "not img-other"},
		"truncated envelope":        {env: good[:len(good)/2], is: ErrEnvelope},
		"empty":                     {env: nil, is: ErrEnvelope},
		"trailing data":             {env: append(append([]byte{}, good...), good...), is: ErrEnvelope, says: "data after"},
		"unknown field":             {env: []byte(strings.Replace(string(good), `{"payloadType"`, `{"x":1,"payloadType"`, 1)), is: ErrEnvelope},
		"payload not base64":        {env: editEnvelope(t, good, func(e *dsse.Envelope) { e.Payload = "%%%" }), is: ErrEnvelope, says: "not base64"},
		"no signature":              {env: editEnvelope(t, good, func(e *dsse.Envelope) { e.Signatures = nil }), is: ErrEnvelope, says: "no signature"},
		"signature not base64":      {env: editEnvelope(t, good, func(e *dsse.Envelope) { e.Signatures[0].Sig = "%%" }), is: ErrEnvelope},
		"signed, not a statement":   {env: forged, is: ErrStatement},
	} {
		t.Run(name, func(t *testing.T) {
			tr, want := tc.trust, tc.want
			if tr == nil {
				tr = trust
			}
			if want.DiskDigest == "" {
				want = expect(in)
			}
			_, err := Verify(tc.env, tr, now, want)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Verify: %v\nwant %v saying %q", err, tc.is, tc.says)
			}
		})
	}
}

// TestVerifyAcceptsAnySignature checks that one good signature among
// unknown ones is enough, and that a signer in its window passes.
func TestVerifyAcceptsAnySignature(t *testing.T) {
	key, other := newKey(t, Ed25519), newKey(t, Ed25519)
	in := bakeInputs("img-app", "img-base")
	both := editEnvelope(t, signed(t, in, other), func(e *dsse.Envelope) {
		var mine dsse.Envelope
		json.Unmarshal(signed(t, in, key), &mine)
		e.Signatures = append(e.Signatures, mine.Signatures...)
	})
	tr := &Trust{}
	if err := tr.Add("bakery", key.Public(), t0, now); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(both, tr, now, expect(in)); err != nil {
		t.Fatal(err)
	}
}
