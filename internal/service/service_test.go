package service

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aminator-go/aminator/internal/engine/imageref"
	"github.com/aminator-go/aminator/internal/plugin"
)

// The local cloud opens the same way whoever asks, and the bakery's
// resolver finds images through it.
func TestOpenAndResolveIn(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	if name, err := CloudName(cfg); err != nil || name != "local" {
		t.Fatalf("default environment's cloud %q, %v", name, err)
	}
	c, err := OpenCloud(ctx, cfg, "local", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	imp, err := plugin.Has[plugin.Importer](c, "local", "import")
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := imp.Import(ctx, raw, plugin.ImportRequest{Name: "base", Architecture: "x86_64", VirtualizationType: "hvm",
		Tags: plugin.Tags{"family": "base", "channel": "release", "role": "base"}})
	if err != nil {
		t.Fatal(err)
	}
	Close(c)
	for _, ref := range []imageref.Ref{{ID: im.ID}, {Name: "base"}, {Name: "base", Label: "release"}} {
		got, err := ResolveIn(ctx, cfg, "local", "", ref)
		if err != nil || got.ID != im.ID {
			t.Errorf("ResolveIn %v: %v, %v", ref, got, err)
		}
	}
	if _, err := ResolveIn(ctx, cfg, "local", "", imageref.Ref{Name: "nope"}); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("a missing image: %v", err)
	}
	if _, err := ResolveIn(ctx, cfg, "local", "no-such-environment", imageref.Ref{Name: "base"}); err == nil {
		t.Error("an unknown environment resolved")
	}
	if _, err := OpenCloud(ctx, cfg, "no-such-cloud", nil); err == nil {
		t.Error("an unknown cloud opened")
	}
}
