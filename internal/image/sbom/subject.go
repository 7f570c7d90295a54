package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/aminator-go/aminator/internal/image/diskdigest"
	"regexp"
	"strings"
	"time"
)

// Subject is what a document describes besides the packages: the image,
// its disk, the baked package, and when and by what it was made. An SBOM
// depends only on its Inventory and Subject, so the same ones give the
// same bytes.
type Subject struct {
	Image      string    // the image's name or id: the document's subject
	DiskDigest string    // the disk's digest (DiskAlgorithm), lower-case hex
	Package    string    // the baked package's name, marked as the primary component; "" for none (a foundation)
	Created    time.Time // the document's creation time
	Tool       string    // the creating tool's name, e.g. "aminator"
	Version    string    // and its version, e.g. "1.4.0"
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// DiskAlgorithm names the disk digest a Subject carries: a SHA-256 over
// the SHA-256 of each 512 KiB chunk of the raw disk (package diskdigest
// defines it), which the store computes from its chunk hashes without
// reading the disk. SPDX's and CycloneDX's checksum fields take only
// their own algorithms' names, so the digest goes in an external
// reference (SPDX) and a property (CycloneDX) that say its algorithm.
const DiskAlgorithm = diskdigest.Algorithm

func (s Subject) check() error {
	switch {
	case s.Image == "":
		return fmt.Errorf("sbom: no image named as the subject")
	case !sha256RE.MatchString(s.DiskDigest):
		return fmt.Errorf("sbom: image %s: disk digest %.80q is not 64 lower-case hex digits", s.Image, s.DiskDigest)
	case s.Created.IsZero():
		return fmt.Errorf("sbom: image %s: no creation time", s.Image)
	case s.Tool == "" || s.Version == "":
		return fmt.Errorf("sbom: image %s: no creating tool and version named", s.Image)
	}
	return nil
}

// created is the creation time as both formats want it: UTC, seconds.
func (s Subject) created() string {
	return s.Created.UTC().Format(time.RFC3339)
}

// primary is the index in pkgs of the baked package, -1 when it is not
// among them (or none is named). A package of several architectures is
// matched by its first.
func primary(pkgs []Package, name string) int {
	for i, p := range pkgs {
		if name != "" && p.Name == name {
			return i
		}
	}
	return -1
}

// refID is a stable, document-unique identifier for a package, built
// from the characters SPDX allows in an element id and a digest of its
// purl.
func refID(p Package) string {
	sum := sha256.Sum256([]byte(p.PURL))
	return "Package-" + strings.Map(idRune, p.Name) + "-" + hex.EncodeToString(sum[:6])
}

// idRune keeps the characters SPDX allows in an element id and makes the
// others (+, _, :) a hyphen.
func idRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
		return r
	}
	return '-'
}
