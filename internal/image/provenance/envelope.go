package provenance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// ErrEnvelope is a truncated or malformed envelope.
var ErrEnvelope = errors.New("invalid provenance envelope")

// Sign wraps Statement bytes in a DSSE envelope signed by signer and
// returns the envelope's JSON. An ed25519 signature, and so the envelope,
// is the same for the same statement; an ECDSA one is not.
func Sign(ctx context.Context, statement []byte, signer Signer) ([]byte, error) {
	es, err := dsse.NewEnvelopeSigner(signer)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	env, err := es.SignPayload(ctx, PayloadType, statement)
	if err != nil {
		return nil, fmt.Errorf("provenance: sign: %w", err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("provenance: encode envelope: %w", err)
	}
	return b, nil
}

// parseEnvelope decodes envelope JSON strictly: known fields only, the
// in-toto payload type, standard base64, at least one signature.
func parseEnvelope(b []byte) (*dsse.Envelope, []byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var env dsse.Envelope
	if err := dec.Decode(&env); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%w: data after the envelope", ErrEnvelope)
	}
	if env.PayloadType != PayloadType {
		return nil, nil, fmt.Errorf("%w: payload type %q, want %s", ErrEnvelope, env.PayloadType, PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil || len(payload) == 0 {
		return nil, nil, fmt.Errorf("%w: the payload is not base64 (%v)", ErrEnvelope, err)
	}
	if len(env.Signatures) == 0 {
		return nil, nil, fmt.Errorf("%w: no signature", ErrEnvelope)
	}
	return &env, payload, nil
}
