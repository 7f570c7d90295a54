package sbom

import (
	"bytes"
	"fmt"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
)

// Property names in the components, under aminator's own namespace as
// CycloneDX's property taxonomy asks.
const (
	propSource = "aminator:package:source"
	propArch   = "aminator:package:arch"
	propBaked  = "aminator:package:baked"
	propDB     = "aminator:image:package-database"
	propNote   = "aminator:image:note"
	propDisk   = "aminator:image:disk-digest"
)

// cdxSchema is the 1.6 schema's id, which a CycloneDX JSON document names.
const cdxSchema = "http://cyclonedx.org/schema/bom-1.6.schema.json"

// CycloneDX is inv as a CycloneDX 1.6 JSON document, compact, built as 1.6
// directly (EncodeVersion would deep-copy the BOM through gob to convert
// it from the module's newest version, a sixth of the time): the image is the
// metadata's component (the BOM's subject, its disk's SHA-256 as its
// hash), it depends on the baked package, which a property marks; every
// installed package is a component.
func CycloneDX(inv *Inventory, s Subject) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	bom := &cdx.BOM{JSONSchema: cdxSchema, BOMFormat: cdx.BOMFormat, SpecVersion: cdx.SpecVersion1_6, Version: 1}
	bom.SerialNumber = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:aminator:sbom:"+s.Image+":"+s.DiskDigest)).URN()
	bom.Metadata = &cdx.Metadata{
		Timestamp: s.created(),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: s.Tool, Version: s.Version}}},
		Component: cdxImage(inv, s),
	}
	comps := make([]cdx.Component, 0, len(inv.Packages))
	main := primary(inv.Packages, s.Package)
	for i, p := range inv.Packages {
		comps = append(comps, cdxPackage(p, i == main))
	}
	bom.Components = &comps
	if main >= 0 {
		bom.Dependencies = &[]cdx.Dependency{{Ref: imageID, Dependencies: &[]string{refID(inv.Packages[main])}}}
	}
	var b bytes.Buffer
	if err := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).SetEscapeHTML(false).Encode(bom); err != nil {
		return nil, fmt.Errorf("sbom: write CycloneDX document of %s: %w", s.Image, err)
	}
	return b.Bytes(), nil
}

func cdxImage(inv *Inventory, s Subject) *cdx.Component {
	props := []cdx.Property{{Name: propDB, Value: string(inv.Kind)}, {Name: propDisk, Value: DiskAlgorithm + ":" + s.DiskDigest}}
	if inv.Note != "" {
		props = append(props, cdx.Property{Name: propNote, Value: inv.Note})
	}
	return &cdx.Component{
		BOMRef:      imageID,
		Type:        cdx.ComponentTypeOS,
		Name:        s.Image,
		Description: describe(inv),
		Properties:  &props,
	}
}

func cdxPackage(p Package, main bool) cdx.Component {
	props := []cdx.Property{
		{Name: propArch, Value: p.Arch},
		{Name: propSource, Value: p.Source + " " + p.SourceVersion},
	}
	if main {
		props = append(props, cdx.Property{Name: propBaked, Value: "true"})
	}
	c := cdx.Component{
		BOMRef:     refID(p),
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
		Properties: &props,
	}
	if main {
		c.Type = cdx.ComponentTypeApplication
	}
	if p.License != NoAssertion {
		c.Licenses = &cdx.Licenses{{Expression: p.License}}
	}
	return c
}
