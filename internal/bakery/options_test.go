package bakery

import (
	"slices"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
)

// Every bake option of a request names a configuration key (which the
// child sets as the command line's flag would; an unknown key would fail
// only at bake time) and is a field of the API's JSON.
func TestOptionsAreConfigKeys(t *testing.T) {
	keys := config.ContextKeys()
	var r Request
	opts := r.Options()
	if len(opts) == 0 {
		t.Fatal("no bake options")
	}
	for i, o := range opts {
		if !slices.Contains(keys, o.Key) {
			t.Errorf("option %s is no key of config.Context", o.Key)
		}
		if f := optionFields[i]; f.Tag.Get("json") == "" || f.Tag.Get("json") == "-" {
			t.Errorf("Request.%s is an option without a JSON field", f.Name)
		}
	}
}

// A request's options become the queued bake's settings: a field given
// sets its key, one left empty sets nothing (the configuration's value
// stands).
func TestOptionsBecomeSettings(t *testing.T) {
	r := Request{Package: "app", BaseID: "ami-00000000000000001", Region: "west", VMType: "paravirtual"}
	settings, _ := QueuedBake{ID: "b1", Request: r}.Settings()
	want := map[string]string{"base_ami_id": "ami-00000000000000001", "region": "west", "vm_type": "paravirtual"}
	if len(settings) != len(want) {
		t.Errorf("settings %v, want %v", settings, want)
	}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("%s = %q, want %q", k, settings[k], v)
		}
	}
}
