package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
	"github.com/aminator-go/aminator/internal/bakery/broker"
	"github.com/aminator-go/aminator/internal/bakery/store"
)

// Every stream the bakery makes (its buckets and object store are
// streams too) has a size cap, and all but the tokens' a maximum age.
func TestEveryStreamIsBounded(t *testing.T) {
	s := bakerytest.Store(t)
	ctx := context.Background()
	var names []string
	for info := range s.JS.ListStreams(ctx).Info() {
		c := info.Config
		names = append(names, c.Name)
		if c.MaxBytes <= 0 {
			t.Errorf("%s has no size cap", c.Name)
		}
		if c.MaxAge <= 0 && c.Name != "KV_aminator-bakery-tokens" {
			t.Errorf("%s keeps messages forever", c.Name)
		}
	}
	if len(names) != 7 {
		t.Errorf("streams %v", names)
	}
}

// The administration commands attach to the store as serve made it:
// they neither create it nor change its limits.
func TestAttachKeepsTheLimits(t *testing.T) {
	ns, client, err := broker.EmbeddedNATS{Dir: t.TempDir(), Listen: "127.0.0.1:-1"}.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := client.Connect("t")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	if _, err := store.Attach(ctx, nc); err == nil || !strings.Contains(err.Error(), "aminate serve makes it") {
		t.Errorf("attach to an empty NATS: %v", err)
	}
	ret := store.DefaultRetention()
	ret.Records = 90 * 24 * time.Hour
	if _, err := store.OpenWith(ctx, nc, ret); err != nil {
		t.Fatal(err)
	}
	s, err := store.Attach(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, "team-a", false, "test"); err != nil {
		t.Fatal(err)
	}
	st, _ := s.JS.Stream(ctx, "KV_"+store.RecordBucket)
	if info, _ := st.Info(ctx); info.Config.MaxAge != ret.Records {
		t.Errorf("records kept %s, want %s", info.Config.MaxAge, ret.Records)
	}
}
