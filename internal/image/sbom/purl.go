package sbom

import (
	"strings"

	"github.com/package-url/packageurl-go"
)

// debPURL is pkg:deb/NAMESPACE/NAME@VERSION?arch=ARCH&distro=DISTRO, the
// version whole (with its epoch), as the purl spec's deb type has it.
func debPURL(d Distro, name, version, arch string) string {
	return packageurl.NewPackageURL(packageurl.TypeDebian, d.namespace(KindDeb), name, version,
		qualifiers(map[string]string{"arch": arch, "distro": d.qualifier()}), "").ToString()
}

// rpmPURL is pkg:rpm/NAMESPACE/NAME@VERSION-RELEASE?arch=ARCH&epoch=E&distro=DISTRO:
// the purl spec's rpm type keeps the epoch in a qualifier, not the version.
func rpmPURL(d Distro, name, version, arch string) string {
	epoch := ""
	if e, rest, ok := strings.Cut(version, ":"); ok {
		epoch, version = e, rest
	}
	return packageurl.NewPackageURL(packageurl.TypeRPM, d.namespace(KindRPM), name, version,
		qualifiers(map[string]string{"arch": arch, "epoch": epoch, "distro": d.qualifier()}), "").ToString()
}

// qualifiers drops the empty ones; QualifiersFromMap sorts the rest by key,
// as the purl spec's canonical form wants.
func qualifiers(m map[string]string) packageurl.Qualifiers {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return packageurl.QualifiersFromMap(m)
}
