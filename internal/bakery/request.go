package bakery

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/aminator-go/aminator/internal/image/imageref"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/sys/confine"
)

// Request is what a team asks for.
type Request struct {
	Package string `json:"package"`
	// PackageSHA256 (hex) is what a package file's or URL's bytes must
	// hash to. For a file under --package-dir the API sets it to the
	// file's digest at submission (see PinPackage), so the bake uses
	// exactly the bytes the request's key was made of.
	PackageSHA256 string `json:"package_sha256,omitempty"`
	// Base: an id, a name, or a family with a channel label.
	BaseID    string `json:"base_id,omitempty"`
	BaseName  string `json:"base_name,omitempty"`
	BaseLabel string `json:"base_label,omitempty"`
	Region    string `json:"region"`
	// Environment is the aminator environment to bake with ("" default).
	Environment string            `json:"environment,omitempty"`
	Name        string            `json:"name,omitempty"`
	VMType      string            `json:"vm_type,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Rebake bakes even if an identical request is running or done.
	Rebake bool `json:"rebake,omitempty"`
	// CI metadata (build host, job, build number, commit, URL), recorded
	// as tags on the image; not part of the identity of the request.
	CI map[string]string `json:"ci,omitempty"`
	// TimeoutSeconds stops the bake (with its cleanup) after this long
	// (0: the bakery's default); at most the bakery's maximum.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// BaseRef is the base image the request names.
func (r *Request) BaseRef() imageref.Ref {
	switch {
	case r.BaseID != "":
		return imageref.Ref{ID: r.BaseID}
	case r.BaseLabel != "":
		return imageref.Ref{Name: r.BaseName, Label: r.BaseLabel}
	}
	return imageref.Parse(r.BaseName)
}

var (
	regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	tagKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:/+@-]{1,100}$`)
)

// ValidRegion says whether a region's name is one the bakery takes:
// lower-case letters, digits and -.
func ValidRegion(region string) bool { return regionRE.MatchString(region) }

// reserved says whether a request may not set a tag: the tags a bake sets
// itself (naming.ToolTags: a request tagging its image channel=release
// would become every team's base) and the bakery's own bakery_id.
func reserved(key string) bool {
	_, ok := naming.Reserved(key, naming.ScopeBake)
	return ok || key == "bakery_id"
}

// Validate checks a request before anything is queued. Local package
// files are accepted only under packageDir ("" accepts none): a request
// must not make the service read or bake any file of its host.
func (r *Request) Validate(packageDir string) error {
	if r.Package == "" {
		return errors.New("no package")
	}
	if strings.HasPrefix(r.Package, "-") {
		return fmt.Errorf("package %q must not start with '-'", r.Package)
	}
	if isLocal(r.Package) {
		if err := checkLocal(r.Package, packageDir); err != nil {
			return err
		}
	}
	if err := r.checkPackageSum(); err != nil {
		return err
	}
	if (r.BaseID == "") == (r.BaseName == "") {
		return errors.New("give exactly one of base_id and base_name")
	}
	if r.BaseLabel != "" && r.BaseName == "" {
		return errors.New("base_label goes with base_name")
	}
	if !regionRE.MatchString(r.Region) {
		return fmt.Errorf("region %q: lower-case letters, digits and -", r.Region)
	}
	for _, s := range []string{r.BaseID, r.BaseName, r.BaseLabel, r.Environment, r.Name, r.VMType} {
		if strings.HasPrefix(s, "-") {
			return fmt.Errorf("%q must not start with '-'", s)
		}
	}
	if err := r.checkSizes(); err != nil {
		return err
	}
	for k, v := range r.Tags {
		if !tagKeyRE.MatchString(k) || strings.ContainsRune(v, '\n') {
			return fmt.Errorf("tag %q: keys are 1-100 of letters, digits and _.:/+@-", k)
		}
		if reserved(k) {
			return fmt.Errorf("tag %q is set by aminator and cannot be requested", k)
		}
	}
	for k, v := range r.CI {
		if !tagKeyRE.MatchString(k) || strings.ContainsRune(v, '\n') {
			return fmt.Errorf("ci key %q: 1-100 of letters, digits and _.:/+@-", k)
		}
	}
	return nil
}

// isLocal says whether a package names a file (as the provisioners read it).
func isLocal(p string) bool {
	return !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") &&
		(strings.HasPrefix(p, "file://") || strings.Contains(p, "/") || strings.HasSuffix(p, ".deb") || strings.HasSuffix(p, ".rpm"))
}

func checkLocal(p, dir string) error {
	if dir == "" {
		return fmt.Errorf("package %q is a file on the bakery's host; this bakery takes repository names and http(s) URLs (serve --package-dir allows files from one directory)", p)
	}
	p = strings.TrimPrefix(p, "file://")
	clean := filepath.Clean(p)
	if !filepath.IsAbs(clean) || clean != p || !strings.HasPrefix(clean, filepath.Clean(dir)+"/") {
		return fmt.Errorf("package file %q must be a clean absolute path under %s", p, dir)
	}
	f, err := confine.Open(dir, clean) // no symlink on the way, nothing but a regular file
	if err != nil {
		return fmt.Errorf("package file: %w", err)
	}
	return f.Close()
}
