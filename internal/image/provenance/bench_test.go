package provenance

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkBuildSignVerify is what provenance adds to a bake with a key
// file: the statement built (and schema-checked), signed, and verified
// (signature, schema again, subjects), with a configuration of 40
// settings. Issue 21 gives SBOM and provenance together 0.1 s of a bake.
func BenchmarkBuildSignVerify(b *testing.B) {
	in := bakeInputs("img-app", "img-base")
	for i := range 40 {
		in.Configuration[fmt.Sprintf("setting_%02d", i)] = fmt.Sprintf("value %d", i)
	}
	ctx := context.Background()
	for _, alg := range []string{Ed25519, ECDSAP256} {
		key := newKey(b, alg)
		trust := trusting(b, key)
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				st, err := Build(in)
				if err != nil {
					b.Fatal(err)
				}
				env, err := Sign(ctx, st, key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Verify(env, trust, now, expect(in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
