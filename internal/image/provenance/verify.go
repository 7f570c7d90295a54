package provenance

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// The ways an envelope fails, for errors.Is (ErrEnvelope too).
var (
	ErrUnknownSigner  = errors.New("unknown signer")
	ErrSignerExpired  = errors.New("signer not valid now")
	ErrBadSignature   = errors.New("signature does not verify")
	ErrStatement      = errors.New("invalid provenance statement")
	ErrDigestMismatch = errors.New("digest does not match the provenance")
)

// Expect is what the verifier measured itself: the image's id ("" not to
// check it), its disk's SHA-256 and its SBOMs' (all lower-case hex), each
// to be found among the statement's subjects.
type Expect struct {
	ImageID    string
	DiskDigest string
	SBOMSHA256 []string
}

// Result is a verified envelope: its statement and who signed it.
type Result struct {
	Statement *Statement
	Signer    TrustedSigner
}

// Verify checks an envelope: a signature by a signer of trust valid at
// now, a well-formed Statement, and subjects that match want.
func Verify(envelope []byte, trust *Trust, now time.Time, want Expect) (*Result, error) {
	env, payload, err := parseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	signer, err := checkSignatures(env, payload, trust, now)
	if err != nil {
		return nil, err
	}
	st, err := ParseStatement(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	if err := checkSubjects(st, want); err != nil {
		return nil, err
	}
	return &Result{Statement: st, Signer: signer}, nil
}

// checkSignatures returns the first trusted signer whose signature
// verifies and who is valid at now. Failing that, it says the worst thing
// that was found: a bad signature by a trusted key, then a signer out of
// its window, then signers it does not know.
func checkSignatures(env *dsse.Envelope, payload []byte, trust *Trust, now time.Time) (TrustedSigner, error) {
	pae := dsse.PAE(env.PayloadType, payload)
	var bad, expired, unknown []string
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return TrustedSigner{}, fmt.Errorf("%w: signature by %q is not base64", ErrEnvelope, s.KeyID)
		}
		candidates := trust.candidates(s.KeyID)
		if len(candidates) == 0 {
			unknown = append(unknown, s.KeyID)
			continue
		}
		for _, ts := range candidates {
			if !verifySig(ts.Public, pae, sig) {
				bad = append(bad, ts.Name+" ("+ts.KeyID+")")
				continue
			}
			if why := ts.validAt(now); why != "" {
				expired = append(expired, fmt.Sprintf("%s (%s) %s", ts.Name, ts.KeyID, why))
				continue
			}
			return ts, nil
		}
	}
	switch {
	case len(bad) > 0:
		return TrustedSigner{}, fmt.Errorf("%w: the payload or signature was changed, or another key signed it: tried %s", ErrBadSignature, strings.Join(bad, ", "))
	case len(expired) > 0:
		return TrustedSigner{}, fmt.Errorf("%w (%s): %s", ErrSignerExpired, now.UTC().Format(time.RFC3339), strings.Join(expired, ", "))
	}
	return TrustedSigner{}, fmt.Errorf("%w: key %s is not in the trust file", ErrUnknownSigner, strings.Join(unknown, ", "))
}

// candidates are the signers a signature with keyID may be by: the one
// with that id, or every one when the signature names none.
func (t *Trust) candidates(keyID string) []TrustedSigner {
	if keyID == "" {
		return t.Signers
	}
	for _, s := range t.Signers {
		if s.KeyID == keyID {
			return []TrustedSigner{s}
		}
	}
	return nil
}

func checkSubjects(st *Statement, want Expect) error {
	disk, ok := st.Disk()
	if !ok {
		return fmt.Errorf("%w: no disk among the subjects", ErrStatement)
	}
	if want.ImageID != "" && disk.Name != want.ImageID {
		return fmt.Errorf("%w: the provenance is of image %s, not %s", ErrDigestMismatch, disk.Name, want.ImageID)
	}
	if disk.disk() != want.DiskDigest {
		return fmt.Errorf("%w: image %s: disk digest is %s, the provenance says %s", ErrDigestMismatch, disk.Name, want.DiskDigest, disk.disk())
	}
	var sboms []string
	for _, s := range st.Subject {
		if s.kind() == KindSBOM {
			sboms = append(sboms, s.sha256())
		}
	}
	for _, d := range want.SBOMSHA256 {
		if !slices.Contains(sboms, d) {
			return fmt.Errorf("%w: image %s: an SBOM's SHA-256 %s is not among the provenance's (%s)", ErrDigestMismatch, disk.Name, d, strings.Join(sboms, ", "))
		}
	}
	return nil
}

// Base is the base image a bake's statement names, nil for a foundation.
func (st *Statement) Base() *BaseParam { return st.Predicate.BuildDefinition.ExternalParameters.Base }
