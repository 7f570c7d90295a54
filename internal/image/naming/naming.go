// Package naming builds image names, descriptions and version fields the
// way the original Aminator does, so images baked by either tool line up.
package naming

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

var unsafe = regexp.MustCompile(`[^A-Za-z0-9().\-/_]`)

// Sanitize replaces every character outside [A-Za-z0-9().-/_] with '_'
// and trims the name to the 128 characters EC2 allows.
func Sanitize(name string) string {
	s := unsafe.ReplaceAllString(name, "_")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

// Suffix is the default name suffix: the UTC time as yyyymmddHHMM.
func Suffix(t time.Time) string { return t.UTC().Format("200601021504") }

// SplitVersion strips an epoch ("1:") and splits a package version at the
// first '-' into version and release; with no '-' the release is "0".
func SplitVersion(full string) (version, release string) {
	v := full
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	version, release, ok := strings.Cut(v, "-")
	if !ok {
		release = "0"
	}
	return version, release
}

// Fields are what an image name is made from.
type Fields struct {
	Name, Version, Release, Arch, Suffix, StoreType string
}

// ImageName is the default name {name}-{version}-{release}-{arch}-{suffix}-{store}
// or, when the user gave a name, {given}-{suffix}.
func ImageName(given string, f Fields) string {
	if given != "" {
		return Sanitize(given + "-" + f.Suffix)
	}
	return Sanitize(fmt.Sprintf("%s-%s-%s-%s-%s-%s", f.Name, f.Version, f.Release, f.Arch, f.Suffix, f.StoreType))
}

// AppVersion is the appversion tag: {name}-{version}-{release}.
func AppVersion(f Fields) string { return fmt.Sprintf("%s-%s-%s", f.Name, f.Version, f.Release) }

// Description is the original's image description.
func Description(name, arch, ancestorName, ancestorID, ancestorVersion string) string {
	return fmt.Sprintf("name=%s, arch=%s, ancestor_name=%s, ancestor_id=%s, ancestor_version=%s", name, arch, ancestorName, ancestorID, ancestorVersion)
}

// CreationTime is the creation_time tag value (%F %T UTC).
func CreationTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
