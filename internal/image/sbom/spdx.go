package sbom

import (
	"bytes"
	"fmt"

	"github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// imageID is the SPDX element id of the image itself.
const imageID = "Image"

// SPDX is inv as an SPDX 2.3 JSON document, compact (indenting a document
// of hundreds of packages costs a quarter of the time to write it): the document describes the
// image (its disk's SHA-256 as the image package's checksum) and the baked
// package; the image contains every installed package.
func SPDX(inv *Inventory, s Subject) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      s.Image,
		DocumentNamespace: "urn:aminator:sbom:" + s.DiskDigest,
		DocumentComment:   inv.Note,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: s.Tool + "-" + s.Version}},
			Created:  s.created(),
		},
		Packages:      []*spdx.Package{spdxImage(inv, s)},
		Relationships: []*spdx.Relationship{relate("DOCUMENT", "DESCRIBES", imageID)},
	}
	main := primary(inv.Packages, s.Package)
	if main >= 0 {
		doc.Relationships = append(doc.Relationships, relate("DOCUMENT", "DESCRIBES", refID(inv.Packages[main])))
	}
	for i, p := range inv.Packages {
		id := refID(p)
		doc.Packages = append(doc.Packages, spdxPackage(p, id, i == main))
		doc.Relationships = append(doc.Relationships, relate(imageID, "CONTAINS", id))
	}
	var b bytes.Buffer
	if err := json.Write(doc, &b, json.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("sbom: write SPDX document of %s: %w", s.Image, err)
	}
	return b.Bytes(), nil
}

func spdxImage(inv *Inventory, s Subject) *spdx.Package {
	return &spdx.Package{
		PackageName:             s.Image,
		PackageSPDXIdentifier:   imageID,
		PackageDownloadLocation: NoAssertion,
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: "OTHER", RefType: "aminator-disk-digest", Locator: DiskAlgorithm + ":" + s.DiskDigest,
		}},
		PackageLicenseConcluded: NoAssertion,
		PackageLicenseDeclared:  NoAssertion,
		PackageCopyrightText:    NoAssertion,
		PackageDescription:      describe(inv),
		PrimaryPackagePurpose:   "OPERATING_SYSTEM", // the JSON schema spells it so, not as tag-value does
	}
}

// describe says in words what the image is and where its list came from.
func describe(inv *Inventory) string {
	d := "machine image"
	if inv.Distro.Name != "" {
		d += " of " + inv.Distro.Name
	}
	if inv.Kind != KindNone {
		d += "; packages read from its " + string(inv.Kind) + " database"
	}
	return d
}

func spdxPackage(p Package, id string, main bool) *spdx.Package {
	sp := &spdx.Package{
		PackageName:             p.Name,
		PackageSPDXIdentifier:   common.ElementID(id),
		PackageVersion:          p.Version,
		PackageDownloadLocation: NoAssertion,
		PackageSourceInfo:       fmt.Sprintf("built from source package %s %s", p.Source, p.SourceVersion),
		PackageLicenseConcluded: NoAssertion,
		PackageLicenseDeclared:  p.License,
		PackageCopyrightText:    NoAssertion,
		PackageExternalReferences: []*spdx.PackageExternalReference{
			{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL},
		},
	}
	if main {
		sp.PrimaryPackagePurpose = "APPLICATION"
		sp.PackageComment = "the package this image was baked for"
	}
	return sp
}

func relate(a, kind, b string) *spdx.Relationship {
	return &spdx.Relationship{RefA: common.MakeDocElementID("", a), RefB: common.MakeDocElementID("", b), Relationship: kind}
}
