package s3bundle

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ManifestVersion is the manifest format written and read.
const ManifestVersion = "2007-10-10"

// Manifest is a bundle's manifest (NAME.manifest.xml).
type Manifest struct {
	BundlerName, BundlerVersion, BundlerRelease string

	Arch         string
	BlockDevices map[string]string // virtual name (ami, root, ephemeral0, ...) -> device
	KernelID     string
	RamdiskID    string
	ProductCodes []string

	Name      string // of the image file in the tar stream, and the bundle's prefix
	User      string // the account number
	Ancestors []string
	Digest    string // SHA-1 of the tar stream, hex
	Size      int64  // the image's size in bytes
	Bundled   int64  // the encrypted stream's size in bytes

	EC2Key, UserKey, EC2IV, UserIV string // RSA-encrypted key and IV hex text, hex
	Parts                          []Part

	Signature string // hex
}

// escape escapes text as REXML writes it, so that EC2, which parses the
// manifest and writes it again before checking the signature, reads the
// same bytes.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace

type xmlText struct{ strings.Builder }

func (b *xmlText) el(name, text string) {
	if text == "" {
		return
	}
	fmt.Fprintf(b, "<%s>%s</%s>", name, escape(text), name)
}

// machineXML is the <machine_configuration> element, exactly as signed.
func (m *Manifest) machineXML() string {
	var b xmlText
	b.WriteString("<machine_configuration>")
	b.el("architecture", m.Arch)
	if len(m.BlockDevices) > 0 {
		b.WriteString("<block_device_mapping>")
		keys := make([]string, 0, len(m.BlockDevices))
		for k := range m.BlockDevices {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString("<mapping>")
			b.el("virtual", k)
			b.el("device", m.BlockDevices[k])
			b.WriteString("</mapping>")
		}
		b.WriteString("</block_device_mapping>")
	}
	b.el("kernel_id", m.KernelID)
	b.el("ramdisk_id", m.RamdiskID)
	if len(m.ProductCodes) > 0 {
		b.WriteString("<product_codes>")
		for _, c := range m.ProductCodes {
			b.el("product_code", c)
		}
		b.WriteString("</product_codes>")
	}
	b.WriteString("</machine_configuration>")
	return b.String()
}

// imageXML is the <image> element, exactly as signed.
func (m *Manifest) imageXML() string {
	var b xmlText
	b.WriteString("<image>")
	b.el("name", m.Name)
	b.el("user", m.User)
	b.el("type", "machine")
	if len(m.Ancestors) > 0 {
		b.WriteString("<ancestry>")
		for _, a := range m.Ancestors {
			b.el("ancestor_ami_id", a)
		}
		b.WriteString("</ancestry>")
	}
	fmt.Fprintf(&b, "<digest algorithm='SHA1'>%s</digest>", m.Digest)
	b.el("size", strconv.FormatInt(m.Size, 10))
	b.el("bundled_size", strconv.FormatInt(m.Bundled, 10))
	fmt.Fprintf(&b, "<ec2_encrypted_key algorithm='AES-128-CBC'>%s</ec2_encrypted_key>", m.EC2Key)
	fmt.Fprintf(&b, "<user_encrypted_key algorithm='AES-128-CBC'>%s</user_encrypted_key>", m.UserKey)
	b.el("ec2_encrypted_iv", m.EC2IV)
	b.el("user_encrypted_iv", m.UserIV)
	fmt.Fprintf(&b, "<parts count='%d'>", len(m.Parts))
	for i, p := range m.Parts {
		fmt.Fprintf(&b, "<part index='%d'>", i)
		b.el("filename", p.Name)
		fmt.Fprintf(&b, "<digest algorithm='SHA1'>%s</digest></part>", p.Digest)
	}
	b.WriteString("</parts></image>")
	return b.String()
}

// signedText is what the signature covers: the machine configuration and
// image elements, as ec2-bundle-image and EC2 cut them out of the text.
func (m *Manifest) signedText() string { return m.machineXML() + m.imageXML() }

// Sign signs the manifest with the user's private key (RSA, SHA-1, PKCS#1 v1.5).
func (m *Manifest) Sign(key *rsa.PrivateKey) error {
	sum := sha1.Sum([]byte(m.signedText()))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA1, sum[:])
	if err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	m.Signature = hex.EncodeToString(sig)
	return nil
}

// XML is the manifest document, in the compact form REXML writes.
func (m *Manifest) XML() []byte {
	var b xmlText
	b.WriteString("<?xml version='1.0'?><manifest>")
	b.el("version", ManifestVersion)
	b.WriteString("<bundler>")
	b.el("name", m.BundlerName)
	b.el("version", m.BundlerVersion)
	b.el("release", m.BundlerRelease)
	b.WriteString("</bundler>")
	b.WriteString(m.signedText())
	b.el("signature", m.Signature)
	b.WriteString("</manifest>")
	return []byte(b.String())
}

// Verify checks the manifest's signature against pub the way EC2 does:
// over the text of the first <machine_configuration> element followed by
// the first <image> element of doc, as they stand in the document.
func Verify(doc []byte, pub *rsa.PublicKey) error {
	s := string(doc)
	mc := cut(s, "machine_configuration")
	im := cut(s, "image")
	if im == "" {
		return errors.New("manifest: no <image> element")
	}
	var m xmlManifest
	if err := xml.Unmarshal(doc, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	sig, err := hex.DecodeString(strings.TrimSpace(m.Signature))
	if err != nil || len(sig) == 0 {
		return errors.New("manifest: signature is not hex")
	}
	sum := sha1.Sum([]byte(mc + im))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, sum[:], sig); err != nil {
		return fmt.Errorf("manifest: signature does not verify: %w", err)
	}
	return nil
}

// cut returns the text from the first <name> to the first </name>.
func cut(s, name string) string {
	i := strings.Index(s, "<"+name+">")
	j := strings.Index(s, "</"+name+">")
	if i < 0 || j < i {
		return ""
	}
	return s[i : j+len(name)+3]
}
