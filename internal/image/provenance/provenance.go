// Package provenance says where an image came from, in a form anyone can
// check: an in-toto v1 Statement with a SLSA Provenance v1 predicate,
// signed in a DSSE envelope with a key file (ed25519 or ECDSA P-256) or an
// AWS KMS key, and verified against a trust file of signers with their
// validity windows.
//
// Build turns Inputs (the image made, its SBOMs, the base and package it
// was made from, the resolved configuration, the bake's id and times) into
// Statement bytes that depend on nothing else, checked against the in-toto
// project's own protobuf definitions. Sign wraps them in an envelope;
// Verify checks an envelope's signer, signature and subjects; Lineage
// verifies an image and each of its ancestors in turn, with a Verdict each.
//
// The image id names the disk's subject rather than being a subject of its
// own: in-toto v1 requires a digest on every subject and has consumers match
// subjects by digest, and an image has no bytes but its disk's. A separate
// subject for the id would either lack a digest (invalid) or repeat the
// disk's (two subjects for one artifact); an annotation would be invisible
// to tools that list subjects by name.
package provenance

import (
	"fmt"
	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"net/url"
	"regexp"
	"sort"
	"time"
)

// The URIs that say what a document is.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://slsa.dev/provenance/v1"
	PayloadType   = "application/vnd.in-toto+json"
	// BuildTypeBake is a package installed on a base image; docs/provenance.md says what its parameters mean.
	BuildTypeBake = "https://github.com/aminator-go/aminator/blob/main/docs/provenance.md#bake-v1"
	// BuildTypeFoundation is an image made from an empty volume: no base, no package.
	BuildTypeFoundation = "https://github.com/aminator-go/aminator/blob/main/docs/provenance.md#foundation-v1"
	// BuildTypeImport is a disk file registered as an image, attested on
	// request: what the tool read of it, not how it was made.
	BuildTypeImport = "https://github.com/aminator-go/aminator/blob/main/docs/provenance.md#import-v1"
)

// The "kind" annotation on subjects and dependencies, which tells the disk
// from the SBOMs and the base from the package.
const (
	KindDisk    = "disk"
	KindSBOM    = "sbom"
	KindBase    = "base-image"
	KindPackage = "package"
)

// DiskAlgorithm is the DigestSet key of a disk's digest: a SHA-256 over the
// SHA-256 of each 512 KiB chunk of the raw disk (package diskdigest
// defines it), which a chunk store computes without reading the disk.
// in-toto allows a digest set to name an algorithm of its own; a plain
// "sha256" of the raw disk would need the whole disk read at every bake.
const DiskAlgorithm = diskdigest.Algorithm

// Image is an image and its disk's digest (DiskAlgorithm, lower-case hex).
type Image struct {
	ID         string
	DiskDigest string
}

// Package is the baked package.
type Package struct {
	Name, Version string
	SHA256        string // the package file's; "" when not known, then URI is required
	URI           string // its purl, or "" when not known
}

// SBOM is one SBOM document of the image.
type SBOM struct {
	Name      string // e.g. "IMAGE.spdx.json"
	MediaType string // application/spdx+json, application/vnd.cyclonedx+json
	SHA256    string
}

// Inputs are everything a Statement says.
type Inputs struct {
	Image   Image
	SBOMs   []SBOM
	Base    *Image   // nil for a foundation or an import
	Package *Package // nil for a foundation or an import
	// Import says the image is an imported disk (BuildTypeImport), not a
	// foundation; it has neither base nor package either.
	Import        bool
	Configuration map[string]any
	BuilderID     string // an absolute URI naming the bakery (the trust boundary)
	Tool, Version string // e.g. "aminator", "1.4.0"
	BakeID        string
	Started       time.Time
	Finished      time.Time
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func checkDigest(what, d string) error {
	if !sha256RE.MatchString(d) {
		return fmt.Errorf("provenance: %s %.80q is not 64 lower-case hex digits", what, d)
	}
	return nil
}

func (in *Inputs) check() error {
	if in.Image.ID == "" {
		return fmt.Errorf("provenance: no image id")
	}
	if err := checkDigest("image "+in.Image.ID+" disk digest", in.Image.DiskDigest); err != nil {
		return err
	}
	for _, s := range in.SBOMs {
		if s.Name == "" || s.MediaType == "" {
			return fmt.Errorf("provenance: image %s: an SBOM needs a name and a media type", in.Image.ID)
		}
		if err := checkDigest("SBOM "+s.Name+" SHA-256", s.SHA256); err != nil {
			return err
		}
	}
	if (in.Base == nil) != (in.Package == nil) || in.Import && in.Base != nil {
		return fmt.Errorf("provenance: image %s: a bake names both a base and a package, a foundation or an import neither", in.Image.ID)
	}
	if in.Base != nil {
		if err := in.checkBake(); err != nil {
			return err
		}
	} else if len(in.Configuration) == 0 {
		return fmt.Errorf("provenance: image %s: a foundation's provenance needs its configuration", in.Image.ID)
	}
	return in.checkRun()
}

func (in *Inputs) checkBake() error {
	if in.Base.ID == "" || in.Package.Name == "" || in.Package.Version == "" {
		return fmt.Errorf("provenance: image %s: the base id, package name and version are required", in.Image.ID)
	}
	if err := checkDigest("base "+in.Base.ID+" disk digest", in.Base.DiskDigest); err != nil {
		return err
	}
	if in.Package.SHA256 == "" && in.Package.URI != "" {
		return nil // a repository package whose file the package manager did not keep: named by its purl
	}
	return checkDigest("package "+in.Package.Name+" SHA-256", in.Package.SHA256)
}

func (in *Inputs) checkRun() error {
	u, err := url.Parse(in.BuilderID)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("provenance: builder id %q is not an absolute URI", in.BuilderID)
	}
	switch {
	case in.Tool == "" || in.Version == "":
		return fmt.Errorf("provenance: image %s: no tool and version named", in.Image.ID)
	case in.BakeID == "":
		return fmt.Errorf("provenance: image %s: no bake id", in.Image.ID)
	case in.Started.IsZero() || in.Finished.Before(in.Started):
		return fmt.Errorf("provenance: image %s: start %s and finish %s are not a build's times", in.Image.ID, in.Started, in.Finished)
	}
	return nil
}

// stamp is a time as the Statement carries it: UTC, RFC 3339, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func subjects(in *Inputs) []ResourceDescriptor {
	out := []ResourceDescriptor{{Name: in.Image.ID, Digest: diskDigest(in.Image.DiskDigest),
		MediaType: "application/octet-stream", Annotations: kind(KindDisk)}}
	sboms := append([]SBOM(nil), in.SBOMs...)
	sort.Slice(sboms, func(i, j int) bool {
		if sboms[i].Name != sboms[j].Name {
			return sboms[i].Name < sboms[j].Name
		}
		return sboms[i].SHA256 < sboms[j].SHA256
	})
	for _, s := range sboms {
		out = append(out, ResourceDescriptor{Name: s.Name, Digest: sha(s.SHA256), MediaType: s.MediaType, Annotations: kind(KindSBOM)})
	}
	return out
}

func sha(d string) map[string]string { return map[string]string{"sha256": d} }

// optionalSHA is sha(d), or no digest set for "".
func optionalSHA(d string) map[string]string {
	if d == "" {
		return nil
	}
	return sha(d)
}

func diskDigest(d string) map[string]string { return map[string]string{DiskAlgorithm: d} }

// disk is the descriptor's disk digest.
func (r ResourceDescriptor) disk() string   { return r.Digest[DiskAlgorithm] }
func kind(k string) map[string]string       { return map[string]string{"kind": k} }
func (r ResourceDescriptor) kind() string   { return r.Annotations["kind"] }
func (r ResourceDescriptor) sha256() string { return r.Digest["sha256"] }
