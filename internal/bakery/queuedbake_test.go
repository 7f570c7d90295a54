package bakery

import (
	"reflect"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/imageref"
)

func TestQueuedBakeSettings(t *testing.T) {
	req := Request{Package: "app", BaseName: "base", BaseLabel: "release", Region: "west", Environment: "ec2_apt_linux",
		Name: "app-img", Tags: map[string]string{"team": "a"}, CI: map[string]string{"build": "42"}}
	settings, tags := QueuedBake{ID: "b1", Request: req}.Settings()
	want := map[string]string{"region": "west", "environment": "ec2_apt_linux", "base_ami_name": "base", "label": "release", "name": "app-img"}
	if !reflect.DeepEqual(settings, want) {
		t.Errorf("settings %v\nwant %v", settings, want)
	}
	if want := map[string]string{"bakery_id": "b1", "team": "a", "ci_build": "42"}; !reflect.DeepEqual(tags, want) {
		t.Errorf("tags %v", tags)
	}
	// The base resolved at submission wins: it is the one the key names.
	settings, _ = QueuedBake{ID: "b2", BaseID: "ami-00000000000000001", Request: req}.Settings()
	if settings["base_ami_id"] != "ami-00000000000000001" || settings["base_ami_name"] != "" || settings["label"] != "" {
		t.Errorf("resolved base: %v", settings)
	}
}

func TestBaseRef(t *testing.T) {
	for _, c := range []struct {
		r    Request
		want imageref.Ref
	}{
		{Request{BaseID: "ami-00000000000000001"}, imageref.Ref{ID: "ami-00000000000000001"}},
		{Request{BaseName: "base", BaseLabel: "candidate"}, imageref.Ref{Name: "base", Label: "candidate"}},
		{Request{BaseName: "base:release"}, imageref.Ref{Name: "base", Label: "release"}},
		{Request{BaseName: "base-1"}, imageref.Ref{Name: "base-1"}},
	} {
		if got := c.r.BaseRef(); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.r, got, c.want)
		}
	}
}
