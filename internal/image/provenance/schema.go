package provenance

import (
	"fmt"

	slsav1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	attv1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// checkSchema decodes b through the in-toto project's protobuf
// definitions of the Statement and the SLSA Provenance v1 predicate
// (refusing fields they do not define) and runs their Validate.
func checkSchema(b []byte) error {
	var st attv1.Statement
	if err := protojson.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("not an in-toto statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("invalid in-toto statement: %w", err)
	}
	if st.GetPredicateType() != PredicateType {
		return fmt.Errorf("predicate type %q is not %s", st.GetPredicateType(), PredicateType)
	}
	pb, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return fmt.Errorf("re-encode the predicate: %w", err)
	}
	var p slsav1.Provenance
	if err := protojson.Unmarshal(pb, &p); err != nil {
		return fmt.Errorf("not a SLSA provenance v1 predicate: %w", err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("invalid SLSA provenance v1 predicate: %w", err)
	}
	return nil
}
