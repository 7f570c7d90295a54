package api

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/worker"
)

// A request for two architectures resolves a base for each at submission
// (its key names both), collapses with the identical request but not with
// one for a single architecture, hands the child both bases, and reports
// both images when it has baked.
func TestAPIArchList(t *testing.T) {
	h := newAPI(t, nil)
	h.api.Resolve = func(_ context.Context, r bakery.Request) (string, error) {
		if a := r.Arches(); a != nil {
			return bakery.JoinBases(a, map[string]string{"x86_64": "ami-00000000000000001", "arm64": "ami-00000000000000002"}), nil
		}
		return "ami-00000000000000001", nil
	}
	two := bakerytest.App("app")
	two.BaseID, two.BaseName, two.Arch = "", "base", []string{"x86_64", "arm64"}
	code, res := h.submit(h.teamA, two)
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d", code)
	}
	rec := res.Bake
	if rec.BaseID != "x86_64=ami-00000000000000001,arm64=ami-00000000000000002" || !reflect.DeepEqual(rec.Request.Arch, two.Arch) {
		t.Errorf("record %+v", rec)
	}
	job := bakery.QueuedBakeOf(rec)
	settings, _ := job.Settings()
	if settings["arch"] != "x86_64,arm64" || settings["base_ami_id"] != "" || job.Bases()["arm64"] != "ami-00000000000000002" {
		t.Errorf("the child's settings %v and bases %v", settings, job.Bases())
	}
	if code, again := h.submit(h.teamA, two); code != http.StatusOK || !again.Cached || again.Bake.ID != rec.ID {
		t.Errorf("the identical request: %d %+v", code, again)
	}
	one := two
	one.Arch = []string{"x86_64"}
	if code, other := h.submit(h.teamA, one); code != http.StatusAccepted || other.Bake.ID == rec.ID {
		t.Errorf("one architecture collapsed with two: %d %+v", code, other)
	}
	partial := two
	partial.KeepPartial = true
	if code, other := h.submit(h.teamA, partial); code != http.StatusAccepted || other.Bake.ID == rec.ID {
		t.Errorf("keep_partial collapsed with the request without it: %d %+v", code, other)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w := &worker.Worker{Store: h.s, Region: "local", Name: "w1", Runner: &bakerytest.Runner{}, PackageDir: h.api.PackageDir}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	final := bakerytest.Wait(t, h.s, rec.ID)
	var got bakery.Record
	h.getJSON(h.teamA, "/api/v1/bakes/"+rec.ID, &got)
	want := []bakery.Image{{ID: "ami-00000000000000001", Name: "img-x86_64", Arch: "x86_64"}, {ID: "ami-00000000000000002", Name: "img-arm64", Arch: "arm64"}}
	if final.State != bakery.Completed || !reflect.DeepEqual(got.Images, want) || got.ImageID != want[0].ID {
		t.Errorf("the completed bake: %s %q %+v", final.State, final.Error, got)
	}
}

// What an arch list cannot be is refused before anything is queued.
func TestAPIArchListRefused(t *testing.T) {
	h := newAPI(t, nil)
	for what, mod := range map[string]func(*bakery.Request){
		"base_id":            func(r *bakery.Request) { r.Arch = []string{"x86_64", "arm64"} },
		"unknown arch":       func(r *bakery.Request) { r.BaseID, r.BaseName, r.Arch = "", "base", []string{"x86_64", "sparc"} },
		"arch twice":         func(r *bakery.Request) { r.BaseID, r.BaseName, r.Arch = "", "base", []string{"arm64", "arm64"} },
		"keep_partial alone": func(r *bakery.Request) { r.KeepPartial = true },
	} {
		r := bakerytest.App("app")
		mod(&r)
		if code, _ := h.submit(h.teamA, r); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", what, code)
		}
	}
	if n := h.count(); n != 0 {
		t.Errorf("%d bakes queued", n)
	}
}
