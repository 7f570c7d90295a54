package provenance

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Statement is an in-toto v1 Statement with a SLSA Provenance v1
// predicate, its fields in the order they are written.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     Provenance           `json:"predicate"`
}

// ResourceDescriptor is in-toto's description of an artifact.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Provenance is the SLSA Provenance v1 predicate.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what was asked for and what it resolved to.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// ExternalParameters are the request, as docs/provenance.md defines them
// for the two build types.
type ExternalParameters struct {
	Package       *PackageParam  `json:"package,omitempty"`
	Base          *BaseParam     `json:"base,omitempty"`
	Configuration map[string]any `json:"configuration,omitempty"`
}

// PackageParam is the package a bake installed.
type PackageParam struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256,omitempty"` // "" for a repository package whose file was not kept
}

// BaseParam is the image a bake started from.
type BaseParam struct {
	ID         string `json:"id"`
	DiskDigest string `json:"diskDigest"`
}

// RunDetails say who built it and when.
type RunDetails struct {
	Builder  Builder  `json:"builder"`
	Metadata Metadata `json:"metadata"`
}

// Builder is the bakery and the tool's version.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata is the bake's id and times (RFC 3339, UTC).
type Metadata struct {
	InvocationID string `json:"invocationId"`
	StartedOn    string `json:"startedOn"`
	FinishedOn   string `json:"finishedOn"`
}

// NewStatement is the Statement that in describes.
func NewStatement(in Inputs) (*Statement, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	st := &Statement{Type: StatementType, Subject: subjects(&in), PredicateType: PredicateType}
	def := &st.Predicate.BuildDefinition
	def.BuildType = BuildTypeFoundation
	if in.Import {
		def.BuildType = BuildTypeImport
	}
	def.ExternalParameters.Configuration = in.Configuration
	if in.Base != nil {
		def.BuildType = BuildTypeBake
		def.ExternalParameters.Package = &PackageParam{Name: in.Package.Name, Version: in.Package.Version, SHA256: in.Package.SHA256}
		def.ExternalParameters.Base = &BaseParam{ID: in.Base.ID, DiskDigest: in.Base.DiskDigest}
		def.ResolvedDependencies = []ResourceDescriptor{
			{Name: in.Base.ID, Digest: diskDigest(in.Base.DiskDigest), Annotations: kind(KindBase)},
			{Name: in.Package.Name + "_" + in.Package.Version, URI: in.Package.URI, Digest: optionalSHA(in.Package.SHA256), Annotations: kind(KindPackage)},
		}
	}
	st.Predicate.RunDetails = RunDetails{
		Builder:  Builder{ID: in.BuilderID, Version: map[string]string{in.Tool: in.Version}},
		Metadata: Metadata{InvocationID: in.BakeID, StartedOn: stamp(in.Started), FinishedOn: stamp(in.Finished)},
	}
	return st, nil
}

// Build is the Statement's bytes: compact JSON in a fixed field order (map
// keys sorted), so the same Inputs give the same bytes. They are checked
// against the in-toto protobuf definitions before they are returned.
func Build(in Inputs) ([]byte, error) {
	st, err := NewStatement(in)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("provenance: encode the statement of image %s: %w", in.Image.ID, err)
	}
	if err := checkSchema(b); err != nil {
		return nil, fmt.Errorf("provenance: image %s: %w", in.Image.ID, err)
	}
	return b, nil
}

// ParseStatement decodes and checks Statement bytes: the in-toto schema,
// no field this package does not know, the statement and predicate types.
func ParseStatement(b []byte) (*Statement, error) {
	if err := checkSchema(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var st Statement
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("provenance statement: %w", err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateType {
		return nil, fmt.Errorf("provenance statement: type %q with predicate %q, want %s with %s", st.Type, st.PredicateType, StatementType, PredicateType)
	}
	if bt := st.Predicate.BuildDefinition.BuildType; bt != BuildTypeBake && bt != BuildTypeFoundation && bt != BuildTypeImport {
		return nil, fmt.Errorf("provenance statement: build type %q is not aminator's", bt)
	}
	return &st, nil
}

// Disk is the subject that is the image's disk (named by the image id).
func (st *Statement) Disk() (ResourceDescriptor, bool) {
	for _, s := range st.Subject {
		if s.kind() == KindDisk {
			return s, true
		}
	}
	return ResourceDescriptor{}, false
}
