package pkgfile

// imageArchs are the image architectures (aminator's and EC2's names:
// x86_64, arm64, i386) that a package architecture, as dpkg or rpm names
// it, installs on; "" stands for every one.
var imageArchs = map[string]string{
	// dpkg
	"all": "", "amd64": "x86_64", "arm64": "arm64", "i386": "i386",
	// rpm (its i386 is dpkg's too)
	"noarch": "", "x86_64": "x86_64", "aarch64": "arm64", "i686": "i386", "i586": "i386", "i486": "i386",
}

// FitsArch reports whether a package of architecture pkgArch (dpkg's or
// rpm's name: all, amd64, arm64, noarch, x86_64, aarch64, ...) installs
// on an image of architecture imageArch (x86_64, arm64 or i386): an
// architecture-independent package (all, noarch) fits every image, any
// other only the one it was built for. An architecture neither format
// maps to an image's (armhf, ppc64el, s390x) fits none.
func FitsArch(pkgArch, imageArch string) bool {
	want, known := imageArchs[pkgArch]
	return known && (want == "" || want == imageArch)
}

// ImageArch is the image architecture a package architecture is built
// for ("" for an architecture-independent one or one no image has).
func ImageArch(pkgArch string) string { return imageArchs[pkgArch] }
