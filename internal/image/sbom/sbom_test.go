package sbom

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// dpkgQuery is what dpkg-query itself lists for the database in admin.
func dpkgQuery(t *testing.T, admin string) []string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+admin, "-W",
		"-f", "${db:Status-Status} ${Package} ${Version} ${Architecture}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		status, rest, _ := strings.Cut(l, " ")
		if status != "config-files" { // removed: only its conffiles are left
			lines = append(lines, rest)
		}
	}
	slices.Sort(lines)
	return lines
}

func inventoryLines(inv *Inventory) []string {
	var lines []string
	for _, p := range inv.Packages {
		lines = append(lines, p.Name+" "+p.Version+" "+p.Arch)
	}
	slices.Sort(lines)
	return lines
}

// The SBOM of a copy of this host's dpkg database lists exactly what
// dpkg-query lists for it, less packages removed but for their conffiles,
// which a stanza added to the copy puts there; both documents validate.
func TestHostStatusMatchesDpkgQuery(t *testing.T) {
	host, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Skip("no dpkg database on this host:", err)
	}
	extra := "\n" + stanza("aminator-removed", "1.0-1", "all", "deinstall ok config-files") +
		"\n" + stanza("aminator-purged", "1.0-1", "all", "purge ok not-installed")
	root := tree(t, map[string]string{"var/lib/dpkg/status": string(host) + extra})
	os.MkdirAll(filepath.Join(root, dpkgUpdates), 0o755)
	want := dpkgQuery(t, filepath.Join(root, "var/lib/dpkg"))
	if len(want) < 10 {
		t.Fatalf("dpkg-query lists only %d packages", len(want))
	}
	inv, err := Read(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := inventoryLines(inv); !slices.Equal(got, want) {
		t.Fatalf("inventory lists %d packages, dpkg-query %d:\n%s", len(got), len(want), diff(got, want))
	}
	spdxDoc, cdxDoc := documents(t, inv, subject("bash"))
	var wantNV []string
	for _, w := range want {
		wantNV = append(wantNV, w[:strings.LastIndex(w, " ")])
	}
	got, _ := spdxPackages(t, spdxDoc)
	if slices.Sort(got); !slices.Equal(got, wantNV) {
		t.Fatalf("SPDX document lists:\n%s", diff(got, wantNV))
	}
	if got := cdxPackages(t, cdxDoc); !slices.Equal(sorted(got), want) {
		t.Fatalf("CycloneDX document lists:\n%s", diff(sorted(got), want))
	}
	for _, p := range inv.Packages {
		if p.License != NoAssertion {
			t.Fatalf("%s: licence %q without a copyright file", p.Name, p.License)
		}
	}
}

// A journal entry dpkg left in updates/ is applied over the status file,
// as dpkg-query applies it: a newer version, a package removed, a package
// added; a file not named by digits is not a journal entry.
func TestUpdatesJournalApplied(t *testing.T) {
	root := tree(t, map[string]string{
		dpkgStatus: stanza("alpha", "1.0-1", "amd64", "install ok installed") + "\n" +
			stanza("beta", "1.0-1", "all", "install ok installed") + "\n" +
			stanza("gamma", "1:2.0-1", "amd64", "install ok installed", "Source: gamma-src (2.0-0.1)"),
		dpkgUpdates + "/0000": stanza("alpha", "2.0-1", "amd64", "install ok installed"),
		dpkgUpdates + "/0001": stanza("beta", "1.0-1", "all", "purge ok not-installed") + "\n" +
			stanza("delta", "0.5", "arm64", "install ok unpacked"),
		dpkgUpdates + "/tmp.i": stanza("beta", "9.9", "all", "install ok installed"),
	})
	want := dpkgQuery(t, filepath.Join(root, "var/lib/dpkg"))
	if !slices.Equal(want, []string{"alpha 2.0-1 amd64", "delta 0.5 arm64", "gamma 1:2.0-1 amd64"}) {
		t.Fatalf("dpkg-query does not apply the journal as this test assumes: %q", want)
	}
	inv, err := Read(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := inventoryLines(inv); !slices.Equal(got, want) {
		t.Fatalf("inventory:\n%s", diff(got, want))
	}
	g := inv.Packages[2]
	if g.Source != "gamma-src" || g.SourceVersion != "2.0-0.1" {
		t.Errorf("gamma's source is %q %q, want gamma-src 2.0-0.1", g.Source, g.SourceVersion)
	}
	if g.PURL != "pkg:deb/debian/gamma@1:2.0-1?arch=amd64" {
		t.Errorf("gamma's purl without os-release is %s", g.PURL)
	}
	documents(t, inv, subject("alpha"))
}

// A status file planted as a symlink that leads out of the image, by an
// absolute or a relative path, is not followed: Read fails instead of
// listing the host's packages; so does an updates directory planted so.
// A copyright file planted the same way gives no licence.
func TestEscapingSymlinkNotFollowed(t *testing.T) {
	outside := tree(t, map[string]string{
		"status":    stanza("host-only", "1.0", "amd64", "install ok installed"),
		"copyright": "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n",
	})
	for _, target := range []string{filepath.Join(outside, "status"), "../../../../../../../../.." + filepath.Join(outside, "status")} {
		root := tree(t, map[string]string{"var/lib/dpkg/.keep": ""})
		if err := os.Symlink(target, filepath.Join(root, dpkgStatus)); err != nil {
			t.Fatal(err)
		}
		inv, err := Read(root, Options{})
		if err == nil {
			t.Fatalf("symlink to %s: read %d packages (%v), want an error", target, len(inv.Packages), inventoryLines(inv))
		}
		if !strings.Contains(err.Error(), "dpkg status") {
			t.Errorf("error %q does not say what could not be read", err)
		}
	}
	root := tree(t, map[string]string{dpkgStatus: stanza("pkg", "1.0", "all", "install ok installed")})
	if err := os.Symlink(outside, filepath.Join(root, dpkgUpdates)); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(root, Options{}); err == nil || !strings.Contains(err.Error(), "dpkg journal") {
		t.Errorf("updates directory planted as a symlink out of the image: error %v", err)
	}
	os.Remove(filepath.Join(root, dpkgUpdates))
	os.MkdirAll(filepath.Join(root, "usr/share/doc/pkg"), 0o755)
	if err := os.Symlink(filepath.Join(outside, "copyright"), filepath.Join(root, "usr/share/doc/pkg/copyright")); err != nil {
		t.Fatal(err)
	}
	inv, err := Read(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l := inv.Packages[0].License; l != NoAssertion {
		t.Errorf("licence read through a symlink out of the image: %s", l)
	}
}

// An image that is neither Debian- nor RPM-based gets documents with no
// packages and a note saying why, not an error.
func TestNeitherDebianNorRPM(t *testing.T) {
	root := tree(t, map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=3.20.0\nPRETTY_NAME=\"Alpine Linux v3.20\"\n"})
	inv, err := Read(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kind != KindNone || len(inv.Packages) != 0 || !strings.Contains(inv.Note, "neither Debian- nor RPM-based") {
		t.Fatalf("inventory %+v", inv)
	}
	spdxDoc, cdxDoc := documents(t, inv, subject("absent"))
	for _, d := range [][]byte{spdxDoc, cdxDoc} {
		if !bytes.Contains(d, []byte("neither Debian- nor RPM-based")) || !bytes.Contains(d, []byte(subject("").DiskDigest)) {
			t.Errorf("document lacks the note or the disk's digest:\n%s", d)
		}
	}
}

// A licence is kept only when every Files stanza of the machine-readable
// copyright file names a valid SPDX expression; Debian's own names, free
// text and undeclared LicenseRefs become NOASSERTION, and no document
// carries an invalid expression.
func TestLicences(t *testing.T) {
	dep5 := "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n"
	files := map[string]string{
		"usr/share/doc/valid/copyright":     dep5 + "Files: *\nCopyright: someone\nLicense: MIT\n\nFiles: lib/*\nLicense: Apache-2.0 OR GPL-2.0-or-later\n\nLicense: MIT\n Permission is hereby granted...\n",
		"usr/share/doc/debname/copyright":   dep5 + "Files: *\nLicense: GPL-2+\n\nFiles: x/*\nLicense: MIT\n",
		"usr/share/doc/garbage/copyright":   dep5 + "Files: *\nLicense: MIT AND AND (\n",
		"usr/share/doc/licref/copyright":    dep5 + "Files: *\nLicense: LicenseRef-custom\n",
		"usr/share/doc/freeform/copyright":  "This package is licensed under the MIT licence.\n",
		"usr/share/doc/lowercase/copyright": dep5 + "Files: *\nLicense: bsd-3-clause\n",
	}
	var status []string
	for _, n := range []string{"valid", "debname", "garbage", "licref", "freeform", "lowercase", "nofile"} {
		status = append(status, stanza(n, "1.0", "all", "install ok installed"))
	}
	files[dpkgStatus] = strings.Join(status, "\n")
	inv, err := Read(tree(t, files), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"valid": "(Apache-2.0 OR GPL-2.0-or-later) AND MIT", "lowercase": "BSD-3-Clause"}
	spdxDoc, _ := documents(t, inv, subject("valid"))
	_, licences := spdxPackages(t, spdxDoc)
	for _, p := range inv.Packages {
		w := want[p.Name]
		if w == "" {
			w = NoAssertion
		}
		if p.License != w || licences[p.Name] != w {
			t.Errorf("%s: licence %q, in the document %q, want %q", p.Name, p.License, licences[p.Name], w)
		}
		if ok, bad := spdxexp.ValidateLicenses([]string{p.License}); p.License != NoAssertion && !ok {
			t.Errorf("%s: invalid expression %q: %v", p.Name, p.License, bad)
		}
	}
}

// The same inputs give the same bytes, whatever order the image's files
// were written in; another creation time gives other bytes.
func TestReproducible(t *testing.T) {
	a := stanza("zeta", "1.0", "amd64", "install ok installed")
	b := stanza("alpha", "2.0", "amd64", "install ok installed") + "\n" + stanza("alpha", "2.0", "i386", "install ok installed")
	os := "ID=debian\nVERSION_ID=\"12\"\n"
	inv1, err := Read(tree(t, map[string]string{dpkgStatus: a + "\n" + b, "etc/os-release": os}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv2, err := Read(tree(t, map[string]string{dpkgStatus: b + "\n" + a, "etc/os-release": os}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s1, c1 := documents(t, inv1, subject("zeta"))
	s2, c2 := documents(t, inv2, subject("zeta"))
	if !bytes.Equal(s1, s2) || !bytes.Equal(c1, c2) {
		t.Fatalf("same inputs, different bytes:\n%s\n%s", s1, s2)
	}
	if !bytes.Contains(s1, []byte("pkg:deb/debian/alpha@2.0?arch=i386&distro=debian-12")) {
		t.Errorf("no purl for alpha:i386 in\n%s", s1)
	}
	later := subject("zeta")
	later.Created = later.Created.Add(time.Second)
	if s3, c3 := documents(t, inv1, later); bytes.Equal(s1, s3) || bytes.Equal(c1, c3) {
		t.Error("another creation time, same bytes")
	}
}

// The vendored schemas are not vacuous: a document missing a required
// field or carrying a wrong value fails them.
func TestSchemasRejectBrokenDocuments(t *testing.T) {
	inv, err := Read(tree(t, map[string]string{dpkgStatus: stanza("pkg", "1.0", "all", "install ok installed")}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	spdxDoc, cdxDoc := documents(t, inv, subject("pkg"))
	spdxSchema, cdxSchema := schemas(t)
	for _, c := range []struct {
		schema   *jsonschema.Schema
		doc      []byte
		old, new string
	}{
		{spdxSchema, spdxDoc, `"spdxVersion":"SPDX-2.3",`, ``},
		{spdxSchema, spdxDoc, `"referenceCategory":"OTHER"`, `"referenceCategory":"DISK"`},
		{cdxSchema, cdxDoc, `"type":"operating-system"`, `"type":"machine-image"`},
		{cdxSchema, cdxDoc, `"timestamp":"2026-12-07T12:00:00Z"`, `"timestamp":"yesterday"`},
	} {
		broken := bytes.Replace(c.doc, []byte(c.old), []byte(c.new), 1)
		if bytes.Equal(broken, c.doc) {
			t.Fatalf("%q not in the document", c.old)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(broken))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.schema.Validate(v); err == nil {
			t.Errorf("%q replaced by %q: the schema still accepts the document", c.old, c.new)
		}
	}
}

// Licences given by purl are kept without the copyright file being read;
// a package whose purl is not among them is read as ever.
func TestKnownLicencesReused(t *testing.T) {
	dep5 := "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n"
	root := tree(t, map[string]string{
		dpkgStatus:                     stanza("base", "1.0", "all", "install ok installed") + "\n" + stanza("new", "2.0", "all", "install ok installed"),
		"usr/share/doc/base/copyright": dep5, "usr/share/doc/new/copyright": dep5,
	})
	known := map[string]string{debPURL(Distro{}, "base", "1.0", "all"): "Apache-2.0", debPURL(Distro{}, "new", "1.9", "all"): "BSD-2-Clause"}
	inv, err := Read(root, Options{Licences: known})
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{inv.Packages[0].License, inv.Packages[1].License}; !slices.Equal(got, []string{"Apache-2.0", "MIT"}) {
		t.Fatalf("licences %q, want the known one for base and new's own", got)
	}
	if l := inv.Licences(); len(l) != 2 || l[inv.Packages[1].PURL] != "MIT" {
		t.Errorf("Licences() = %v", l)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// diff lists the lines only one side has.
func diff(got, want []string) string {
	var sb strings.Builder
	for _, g := range got {
		if !slices.Contains(want, g) {
			sb.WriteString("+ " + g + "\n")
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			sb.WriteString("- " + w + "\n")
		}
	}
	return sb.String()
}
