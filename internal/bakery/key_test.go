package bakery

import (
	"reflect"
	"testing"
)

// notInKey are the request's fields deliberately left out of its Key,
// and why. A field added to Request is part of what the request bakes
// unless it is listed here: TestKeyCoversTheRequest fails until it is in
// Key or in this list.
var notInKey = map[string]string{
	"BaseID":         "the key names the base the request resolved to (Key's baseID), not how it was named",
	"BaseName":       "the key names the base the request resolved to, so a family's new release is a new bake",
	"BaseLabel":      "the key names the base the request resolved to, not the channel that led to it",
	"Rebake":         "asks for another bake of the same thing; the image it makes is no different",
	"CI":             "metadata of who asked, recorded as tags; not part of what is baked (documented on Request.CI)",
	"TimeoutSeconds": "bounds how long the bake may take, not what it makes",
}

// nonZero is a value of a field's type other than its zero value.
func nonZero(t *testing.T, f reflect.StructField) reflect.Value {
	switch f.Type.Kind() {
	case reflect.String:
		return reflect.ValueOf("x").Convert(f.Type)
	case reflect.Bool:
		return reflect.ValueOf(true).Convert(f.Type)
	case reflect.Int, reflect.Int64:
		return reflect.ValueOf(7).Convert(f.Type)
	case reflect.Slice:
		return reflect.Append(reflect.MakeSlice(f.Type, 0, 1), reflect.ValueOf("x").Convert(f.Type.Elem()))
	case reflect.Map:
		m := reflect.MakeMap(f.Type)
		m.SetMapIndex(reflect.ValueOf("k").Convert(f.Type.Key()), reflect.ValueOf("v").Convert(f.Type.Elem()))
		return m
	}
	t.Fatalf("Request.%s: a %s; teach nonZero that kind", f.Name, f.Type)
	return reflect.Value{}
}

// Every field of a request changes its key, but for those notInKey says
// are left out (which must not change it): two requests that bake
// different images never collapse into one bake.
func TestKeyCoversTheRequest(t *testing.T) {
	const base = "ami-00000000000000001"
	zero := Key(Request{}, base)
	seen := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Request]()) {
		seen[f.Name] = true
		var r Request
		reflect.ValueOf(&r).Elem().FieldByIndex(f.Index).Set(nonZero(t, f))
		changed := Key(r, base) != zero
		why, excluded := notInKey[f.Name]
		switch {
		case excluded && changed:
			t.Errorf("Request.%s changes the key although notInKey leaves it out (%s)", f.Name, why)
		case !excluded && !changed:
			t.Errorf("Request.%s is not part of Key: add it to Key, or to notInKey with the reason", f.Name)
		}
	}
	for name := range notInKey {
		if !seen[name] {
			t.Errorf("notInKey names %s, which Request does not have", name)
		}
	}
	if Key(Request{}, "ami-00000000000000002") == zero {
		t.Error("the resolved base is not part of the key")
	}
}

// A key is stored with its record, and identical requests collapse on
// it across releases: the key of a given request never changes.
func TestKeyIsStable(t *testing.T) {
	r := Request{Package: "app.deb", PackageSHA256: "ABcd", BaseName: "base", BaseLabel: "release", Region: "us-east-1",
		Environment: "ec2_apt_linux", Name: "app-img", VMType: "hvm", Tags: map[string]string{"team": "a", "owner": "b"},
		Rebake: true, CI: map[string]string{"build": "42"}, TimeoutSeconds: 60}
	if got, want := Key(r, "ami-00000000000000001"), "1acbf3fe5621cbcf3a1212b7f4e956c1"; got != want {
		t.Errorf("key %s, want %s: a request of an earlier release would no longer meet its bake", got, want)
	}
	r.PackageSHA256 = "abcd"
	if Key(r, "ami-00000000000000001") != "1acbf3fe5621cbcf3a1212b7f4e956c1" {
		t.Error("the package digest's case changes the key")
	}
}
