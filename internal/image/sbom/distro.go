package sbom

import (
	"io/fs"
	"strings"
)

// Distro is what the image's os-release says about the distribution.
type Distro struct {
	ID        string // debian, ubuntu, rhel, fedora, ...
	VersionID string // 12, 9.4, 40; "" for a rolling release
	Codename  string // bookworm, ...
	Name      string // PRETTY_NAME, for people
}

// osReleaseFiles are where os-release(5) says to look, in order.
var osReleaseFiles = []string{"etc/os-release", "usr/lib/os-release"}

// readOSRelease reads the image's os-release; a zero Distro when there is
// none.
func readOSRelease(fsys fs.FS) Distro {
	for _, name := range osReleaseFiles {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			continue
		}
		v := parseOSRelease(string(b))
		return Distro{ID: v["ID"], VersionID: v["VERSION_ID"], Codename: v["VERSION_CODENAME"], Name: v["PRETTY_NAME"]}
	}
	return Distro{}
}

// parseOSRelease reads os-release's shell-like KEY=value lines.
func parseOSRelease(s string) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		v[k] = val
	}
	return v
}

// qualifier is the purl distro qualifier: ID-VERSION_ID (debian-12,
// fedora-40), else ID-codename, else ID; "" when os-release is missing.
func (d Distro) qualifier() string {
	switch {
	case d.ID == "":
		return ""
	case d.VersionID != "":
		return d.ID + "-" + d.VersionID
	case d.Codename != "":
		return d.ID + "-" + d.Codename
	}
	return d.ID
}

// namespace is the purl namespace (the vendor) for packages of kind k:
// the os-release ID, with Red Hat's "rhel" spelt "redhat" as the purl
// spec's examples do; a family's first vendor when os-release is missing.
func (d Distro) namespace(k Kind) string {
	switch {
	case d.ID == "rhel":
		return "redhat"
	case d.ID != "":
		return d.ID
	case k == KindDeb:
		return "debian"
	}
	return "redhat"
}
