package s3bundle

import (
	"encoding/xml"
	"fmt"
	"strings"
)

type xmlDigest struct {
	Algorithm string `xml:"algorithm,attr"`
	Value     string `xml:",chardata"`
}

type xmlManifest struct {
	XMLName xml.Name `xml:"manifest"`
	Version string   `xml:"version"`
	Bundler struct {
		Name    string `xml:"name"`
		Version string `xml:"version"`
		Release string `xml:"release"`
	} `xml:"bundler"`
	Machine struct {
		Arch     string `xml:"architecture"`
		Mappings []struct {
			Virtual string `xml:"virtual"`
			Device  string `xml:"device"`
		} `xml:"block_device_mapping>mapping"`
		KernelID     string   `xml:"kernel_id"`
		RamdiskID    string   `xml:"ramdisk_id"`
		ProductCodes []string `xml:"product_codes>product_code"`
	} `xml:"machine_configuration"`
	Image struct {
		Name      string    `xml:"name"`
		User      string    `xml:"user"`
		Type      string    `xml:"type"`
		Ancestors []string  `xml:"ancestry>ancestor_ami_id"`
		Digest    xmlDigest `xml:"digest"`
		Size      int64     `xml:"size"`
		Bundled   int64     `xml:"bundled_size"`
		EC2Key    xmlDigest `xml:"ec2_encrypted_key"`
		UserKey   xmlDigest `xml:"user_encrypted_key"`
		EC2IV     string    `xml:"ec2_encrypted_iv"`
		UserIV    string    `xml:"user_encrypted_iv"`
		Parts     struct {
			Count int `xml:"count,attr"`
			Part  []struct {
				Index    int       `xml:"index,attr"`
				Filename string    `xml:"filename"`
				Digest   xmlDigest `xml:"digest"`
			} `xml:"part"`
		} `xml:"parts"`
	} `xml:"image"`
	Signature string `xml:"signature"`
}

// ParseManifest reads a manifest (it does not check the signature: see Verify).
func ParseManifest(doc []byte) (*Manifest, error) {
	var x xmlManifest
	if err := xml.Unmarshal(doc, &x); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if x.Version != ManifestVersion {
		return nil, fmt.Errorf("manifest: version %q, want %s", x.Version, ManifestVersion)
	}
	im := x.Image
	if im.Digest.Algorithm != "SHA1" || im.EC2Key.Algorithm != "AES-128-CBC" {
		return nil, fmt.Errorf("manifest: algorithms %q/%q, want SHA1/AES-128-CBC", im.Digest.Algorithm, im.EC2Key.Algorithm)
	}
	if im.Parts.Count != len(im.Parts.Part) || im.Parts.Count == 0 {
		return nil, fmt.Errorf("manifest: %d parts listed, count says %d", len(im.Parts.Part), im.Parts.Count)
	}
	m := &Manifest{
		BundlerName: x.Bundler.Name, BundlerVersion: x.Bundler.Version, BundlerRelease: x.Bundler.Release,
		Arch: x.Machine.Arch, KernelID: x.Machine.KernelID, RamdiskID: x.Machine.RamdiskID,
		ProductCodes: x.Machine.ProductCodes,
		Name:         im.Name, User: im.User, Ancestors: im.Ancestors,
		Digest: strings.TrimSpace(im.Digest.Value), Size: im.Size, Bundled: im.Bundled,
		EC2Key: im.EC2Key.Value, UserKey: im.UserKey.Value, EC2IV: im.EC2IV, UserIV: im.UserIV,
		Signature: x.Signature,
	}
	if len(x.Machine.Mappings) > 0 {
		m.BlockDevices = map[string]string{}
		for _, mp := range x.Machine.Mappings {
			m.BlockDevices[mp.Virtual] = mp.Device
		}
	}
	for i, p := range im.Parts.Part {
		if p.Index != i || p.Digest.Algorithm != "SHA1" || !safeName(p.Filename) {
			return nil, fmt.Errorf("manifest: part %d (%q) is out of order, not SHA1 or badly named", i, p.Filename)
		}
		m.Parts = append(m.Parts, Part{Name: p.Filename, Digest: strings.TrimSpace(p.Digest.Value)})
	}
	return m, nil
}
