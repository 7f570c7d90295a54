package bakery

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"

	"github.com/aminator-go/aminator/internal/engine/imageref"
	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/sys/confine"
)

// Request is what a team asks for: the JSON the API takes, and what a
// worker's child bakes.
//
// A field with a `setting` tag is a bake option: the child sets the
// configuration key the tag names (a key of config.Context, whose flag of
// aminate bake is the key with dashes) to the field's value, as that flag
// would. The field is the option's one definition: the API decodes it,
// Options lists it, the child's configuration and the CLI's flag follow
// from its key. Such a field is a string, a list of strings (set as the
// flag takes it, comma-separated) or a bool (set only when true). Tests
// hold the rest together: the key is a configuration key (TestOptionsAreConfigKeys) and a bake
// flag (cli's TestBakeryOptionsAreBakeFlags), every JSON field is in the
// OpenAPI document (TestOpenAPIRequestIsTheRequest), and every field is
// part of the request's Key unless TestKeyCoversTheRequest's list says
// why not.
type Request struct {
	Package string `json:"package"`
	// PackageSHA256 (hex) is what a package file's or URL's bytes must
	// hash to. For a file under --package-dir the API sets it to the
	// file's digest at submission (see PinPackage), so the bake uses
	// exactly the bytes the request's key was made of.
	PackageSHA256 string `json:"package_sha256,omitempty"`
	// Base: an id, a name, or a family with a channel label.
	BaseID    string `json:"base_id,omitempty" setting:"base_ami_id"`
	BaseName  string `json:"base_name,omitempty" setting:"base_ami_name"`
	BaseLabel string `json:"base_label,omitempty" setting:"label"`
	Region    string `json:"region" setting:"region"`
	// Environment is the aminator environment to bake with ("" default).
	Environment string `json:"environment,omitempty" setting:"environment"`
	Name        string `json:"name,omitempty" setting:"name"`
	VMType      string `json:"vm_type,omitempty" setting:"vm_type"`
	// Arch is the architecture to bake for, or several: the package is
	// baked on the newest base of each architecture of the family
	// BaseName names, one image each, linked by the arch_group tag.
	Arch []string `json:"arch,omitempty" setting:"arch"`
	// KeepPartial keeps the images of the architectures that baked when
	// another failed (the bake fails either way).
	KeepPartial bool              `json:"keep_partial,omitempty" setting:"keep_partial"`
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

// Option is a bake option a request sets: a configuration key and its
// value.
type Option struct{ Key, Value string }

// optionFields are the request's fields with a `setting` tag, in order.
var optionFields = func() []reflect.StructField {
	var out []reflect.StructField
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Request]()) {
		if f.Tag.Get("setting") == "" {
			continue
		}
		switch k := f.Type.Kind(); {
		case k == reflect.String, k == reflect.Bool, k == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
		default:
			panic("bakery.Request." + f.Name + ": a setting is a string, a list of strings or a bool")
		}
		out = append(out, f)
	}
	return out
}()

// Options are the request's bake options, given or not, in the order of
// its fields.
func (r *Request) Options() []Option {
	v := reflect.ValueOf(r).Elem()
	out := make([]Option, 0, len(optionFields))
	for _, f := range optionFields {
		out = append(out, Option{Key: f.Tag.Get("setting"), Value: settingValue(v.FieldByIndex(f.Index))})
	}
	return out
}

// settingValue is an option's value as its flag takes it: a list
// comma-separated, a bool "true" or "" (unset).
func settingValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return "true"
		}
		return ""
	case reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	}
	return v.String()
}

// Arches are the architectures the request bakes for when it names
// several (nil when it names one or none: a single bake).
func (r *Request) Arches() []string {
	if len(r.Arch) < 2 {
		return nil
	}
	return r.Arch
}

// stringFields are the values of the request's string fields.
func (r *Request) stringFields() []string {
	v := reflect.ValueOf(r).Elem()
	var out []string
	for _, f := range reflect.VisibleFields(v.Type()) {
		if f.Type.Kind() == reflect.String {
			out = append(out, v.FieldByIndex(f.Index).String())
		}
	}
	return out
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

// BaseRefs are the base images a request for several architectures names:
// the newest of the family of each architecture, by architecture.
func (r *Request) BaseRefs() map[string]imageref.Ref {
	refs := map[string]imageref.Ref{}
	for _, a := range r.Arches() {
		ref := r.BaseRef()
		ref.Arch = a
		refs[a] = ref
	}
	return refs
}

// JoinBases writes the bases a request for several architectures resolved
// to as one resolved base (ARCH=ID,... in the order of arches), which its
// key names and its record keeps.
func JoinBases(arches []string, ids map[string]string) string {
	parts := make([]string, len(arches))
	for i, a := range arches {
		parts[i] = a + "=" + ids[a]
	}
	return strings.Join(parts, ",")
}

// SplitBases reads what JoinBases wrote; nil for a single base id.
func SplitBases(s string) map[string]string {
	if !strings.Contains(s, "=") {
		return nil
	}
	out := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		a, id, _ := strings.Cut(p, "=")
		out[a] = id
	}
	return out
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
	if err := r.checkArch(); err != nil {
		return err
	}
	for _, s := range r.Options() {
		if strings.HasPrefix(s.Value, "-") {
			return fmt.Errorf("%q must not start with '-'", s.Value)
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

// checkArch checks the architectures: known ones, each once, and with
// several a family to find each one's base in.
func (r *Request) checkArch() error {
	seen := map[string]bool{}
	for _, a := range r.Arch {
		if a != "x86_64" && a != "arm64" && a != "i386" {
			return fmt.Errorf("arch %q: x86_64, arm64 or i386", a)
		}
		if seen[a] {
			return fmt.Errorf("arch %q is named twice", a)
		}
		seen[a] = true
	}
	if len(r.Arch) > 1 && r.BaseID != "" {
		return fmt.Errorf("base_id names one image of one architecture; arch %s bakes on the newest base of each architecture of a family: give base_name", strings.Join(r.Arch, ","))
	}
	if r.KeepPartial && len(r.Arch) < 2 {
		return errors.New("keep_partial goes with two or more arch")
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
