package sbom

import (
	"bytes"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
)

// maxCopyright bounds how much of a copyright file is read.
const maxCopyright = 4 << 20

// debLicense is the licence a Debian package declares in its
// machine-readable copyright file (DEP-5) in docs (the image's
// /usr/share/doc): the License of each Files stanza, joined with AND, when
// every one is a valid SPDX expression; NoAssertion otherwise (no file,
// free-form text, Debian-only names such as "GPL-2+" or "Expat"). buf is
// a buffer to reuse: the files run to megabytes, read whole in one call.
func debLicense(docs fs.FS, pkg string, buf *bytes.Buffer) string {
	if docs == nil {
		return NoAssertion
	}
	f, err := docs.Open(pkg + "/copyright")
	if err != nil {
		return NoAssertion
	}
	defer f.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(f, maxCopyright)); err != nil {
		return NoAssertion
	}
	exprs, ok := dep5Licenses(buf.Bytes())
	if !ok {
		return NoAssertion
	}
	return spdxAnd(exprs)
}

// dep5Licenses are the distinct first lines of the License fields of a
// copyright file's Files stanzas; not ok when the file is not in the
// machine-readable format.
func dep5Licenses(text []byte) (exprs []string, ok bool) {
	line, rest, _ := bytes.Cut(text, []byte("\n"))
	if !bytes.HasPrefix(line, []byte("Format:")) || !bytes.Contains(line, []byte("copyright-format/1.0")) {
		return nil, false
	}
	seen := map[string]bool{}
	files, licence := false, ""
	endStanza := func() {
		if files && licence != "" && !seen[licence] {
			seen[licence] = true
			exprs = append(exprs, licence)
		}
		files, licence = false, ""
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimRight(line, "\r")
		switch {
		case len(line) == 0:
			endStanza()
		case line[0] == ' ' || line[0] == '\t':
		case hasField(line, "files"):
			files = true
		case hasField(line, "license"):
			licence = string(bytes.TrimSpace(line[len("license:"):]))
		}
	}
	endStanza()
	return exprs, true
}

// hasField reports whether line starts field name (case-insensitively).
func hasField(line []byte, name string) bool {
	return len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], []byte(name))
}

// rpmLicense is an rpm License tag when it is a valid SPDX expression
// (Fedora's since 2023), NoAssertion otherwise (RHEL 9's "GPLv2+").
func rpmLicense(tag string) string {
	if tag == "" {
		return NoAssertion
	}
	return spdxAnd([]string{tag})
}

// spdxAnd joins valid SPDX expressions, each in its normalised form, with
// AND; NoAssertion when there is none or any is not valid, so that the
// result is never an invalid expression. LicenseRef- and DocumentRef-
// are refused too: a document would have to define them.
func spdxAnd(exprs []string) string {
	if len(exprs) == 0 {
		return NoAssertion
	}
	opts := spdxexp.ValidateLicensesOptions{FailAllLicenseRefs: true, FailAllDocumentRefs: true}
	var parts []string
	for _, e := range exprs {
		norm, bad := spdxexp.ValidateAndNormalizeLicensesWithOptions([]string{e}, opts)
		if len(bad) > 0 || len(norm) != 1 {
			return NoAssertion
		}
		parts = append(parts, norm[0])
	}
	sort.Strings(parts)
	if len(parts) == 1 {
		return parts[0]
	}
	for i, p := range parts {
		if strings.Contains(p, " ") {
			parts[i] = "(" + p + ")"
		}
	}
	return strings.Join(parts, " AND ")
}
