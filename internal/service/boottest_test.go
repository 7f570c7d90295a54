package service

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
)

// A boot that passes or fails is recorded on the image; one that could
// not run leaves the image's tags alone.
func TestBootTestTags(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	defer func(b func(context.Context, boottest.Disks, *plugin.Image, boottest.Options, *slog.Logger) (*boottest.Result, error)) {
		boot = b
	}(boot)
	for _, c := range []struct {
		name  string
		boot  error
		state string
	}{
		{"passes", nil, "passed"},
		{"fails", &boottest.Error{R: &boottest.Result{Reason: "no marker"}}, "failed"},
		{"cannot run", errors.New("no qemu"), ""},
	} {
		boot = func(context.Context, boottest.Disks, *plugin.Image, boottest.Options, *slog.Logger) (*boottest.Result, error) {
			return &boottest.Result{Passed: c.boot == nil, Accel: "tcg"}, c.boot
		}
		f := fakecloud.New()
		im := addImage(t, f, "one", plugin.Tags{})
		// Cancelled meanwhile: the outcome is recorded all the same.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := BootTest(ctx, f, nil, im, boottest.Options{}, log)
		if (err == nil) != (c.boot == nil) {
			t.Errorf("%s: err %v", c.name, err)
		}
		var be *boottest.Error
		if c.state == "failed" && !errors.As(err, &be) {
			t.Errorf("%s: %v is not a boottest.Error", c.name, err)
		}
		im, _ = f.Image(context.Background(), plugin.ImageQuery{ID: im.ID})
		if im.Tags["boot_test"] != c.state || (c.state != "") != (im.Tags["boot_test_time"] != "") {
			t.Errorf("%s: tags %v, want boot_test=%q", c.name, im.Tags, c.state)
		}
	}
}
