package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
)

// A worker refuses a package file that reached the queue without the
// digest the API pins (a record written to NATS by someone else), and
// hands the child a pinned one's digest.
func TestWorkerWantsPinnedFiles(t *testing.T) {
	s := bakerytest.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	deb := filepath.Join(dir, "app.deb")
	os.WriteFile(deb, []byte("one"), 0o644)
	r := &bakerytest.Runner{}
	w := &Worker{Store: s, Region: "local", Runner: r, Concurrency: 1, PackageDir: dir}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	raw := bakery.Request{Package: deb, BaseID: "ami-00000000000000001", Region: "local"}
	bad, _, err := s.Submit(ctx, raw, "ami-00000000000000001", "unpinned")
	if err != nil {
		t.Fatal(err)
	}
	if rec := bakerytest.Wait(t, s, bad.ID); rec.State != bakery.Failed || !strings.Contains(rec.Error, "without the digest the API pins") {
		t.Errorf("unpinned file ended %s: %q", rec.State, rec.Error)
	}
	pinned := raw
	if err := pinned.PinPackage(dir); err != nil {
		t.Fatal(err)
	}
	good, _, err := s.Submit(ctx, pinned, "ami-00000000000000001", "pinned")
	if err != nil {
		t.Fatal(err)
	}
	if rec := bakerytest.Wait(t, s, good.ID); rec.State != bakery.Completed || bakery.QueuedBakeOf(rec).Request.PackageSHA256 != digest("one") {
		t.Errorf("pinned file ended %s: %q, job %+v", rec.State, rec.Error, bakery.QueuedBakeOf(rec))
	}
}

func digest(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}
