package provenance

import (
	"context"
	"fmt"
	"time"
)

// Record is what a store holds for an image: its provenance envelope and
// the digests the verifier measured (its disk's, its SBOMs').
type Record struct {
	Envelope   []byte
	DiskDigest string
	SBOMSHA256 []string
}

// Resolver finds an image's Record by id.
type Resolver func(ctx context.Context, imageID string) (Record, error)

// Verdict is one image's result, as the CLI and the dashboard print it.
type Verdict struct {
	ImageID   string    `json:"image"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	Err       error     `json:"-"`
	Signer    string    `json:"signer,omitempty"`
	KeyID     string    `json:"keyid,omitempty"`
	BuildType string    `json:"buildType,omitempty"`
	BakeID    string    `json:"bake,omitempty"`
	Finished  string    `json:"finished,omitempty"`
	Package   string    `json:"package,omitempty"` // NAME=VERSION
	Base      string    `json:"base,omitempty"`
	Checked   time.Time `json:"checked"`
}

// maxDepth bounds a lineage walk, so a cycle in what a store says ends.
const maxDepth = 64

// Lineage verifies image and then each ancestor its provenance names, as
// far as the first foundation or the first failure, and returns one
// Verdict per image, the image first. A child's statement must name its
// base's disk as the resolver measured it, or the child fails.
func Lineage(ctx context.Context, image string, resolve Resolver, trust *Trust, now time.Time) []Verdict {
	var out []Verdict
	seen := map[string]bool{}
	var wantBase *BaseParam
	for id := image; id != ""; {
		if err := ctx.Err(); err != nil {
			return append(out, fail(id, err, now))
		}
		if seen[id] || len(out) == maxDepth {
			return append(out, fail(id, fmt.Errorf("%w: the lineage loops or is deeper than %d", ErrStatement, maxDepth), now))
		}
		seen[id] = true
		rec, err := resolve(ctx, id)
		if err != nil {
			return append(out, fail(id, fmt.Errorf("find the provenance of %s: %w", id, err), now))
		}
		if wantBase != nil && rec.DiskDigest != wantBase.DiskDigest {
			out[len(out)-1] = fail(out[len(out)-1].ImageID, fmt.Errorf("%w: base %s: its disk digest is %s, the provenance says %s",
				ErrDigestMismatch, id, rec.DiskDigest, wantBase.DiskDigest), now)
			return out
		}
		res, err := Verify(rec.Envelope, trust, now, Expect{ImageID: id, DiskDigest: rec.DiskDigest, SBOMSHA256: rec.SBOMSHA256})
		if err != nil {
			return append(out, fail(id, err, now))
		}
		out = append(out, pass(id, res, now))
		wantBase = res.Statement.Base()
		id = ""
		if wantBase != nil {
			id = wantBase.ID
		}
	}
	return out
}

// LineageOK reports whether every verdict passed.
func LineageOK(v []Verdict) bool {
	for _, x := range v {
		if !x.OK {
			return false
		}
	}
	return len(v) > 0
}

func fail(id string, err error, now time.Time) Verdict {
	return Verdict{ImageID: id, Err: err, Error: err.Error(), Checked: now.UTC()}
}

func pass(id string, r *Result, now time.Time) Verdict {
	p := r.Statement.Predicate
	v := Verdict{ImageID: id, OK: true, Signer: r.Signer.Name, KeyID: r.Signer.KeyID, BuildType: p.BuildDefinition.BuildType,
		BakeID: p.RunDetails.Metadata.InvocationID, Finished: p.RunDetails.Metadata.FinishedOn, Checked: now.UTC()}
	if pk := p.BuildDefinition.ExternalParameters.Package; pk != nil {
		v.Package = pk.Name + "=" + pk.Version
	}
	if b := r.Statement.Base(); b != nil {
		v.Base = b.ID
	}
	return v
}
