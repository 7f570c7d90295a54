package sbom

import (
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/github/go-spdx/v2/spdxexp"
)

// maxCopyright bounds how much of a copyright file is read.
const maxCopyright = 4 << 20

// debLicense is the licence a Debian package declares in its
// machine-readable copyright file (DEP-5): the License of each Files
// stanza, joined with AND, when every one is a valid SPDX expression;
// NoAssertion otherwise (no file, free-form text, Debian-only names such as
// "GPL-2+" or "Expat").
func debLicense(fsys fs.FS, pkg string) string {
	text, err := readCapped(fsys, "usr/share/doc/"+pkg+"/copyright")
	if err != nil || !strings.HasPrefix(text, "Format:") || !strings.Contains(firstLine(text), "copyright-format/1.0") {
		return NoAssertion
	}
	seen := map[string]bool{}
	var exprs []string
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		f := debFields(stanza)
		if _, files := f["files"]; !files || f["license"] == "" || seen[f["license"]] {
			continue
		}
		seen[f["license"]] = true
		exprs = append(exprs, f["license"])
	}
	return spdxAnd(exprs)
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

func readCapped(fsys fs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCopyright))
	return string(b), err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
