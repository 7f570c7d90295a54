package worker

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/bakerytest"
)

// A worker checks a request again: one that reached the queue without
// the API's checks (a package file of the worker's host) is refused, and
// a good one runs.
func TestWorkerChecksRequestsAgain(t *testing.T) {
	s := bakerytest.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &bakerytest.Runner{}
	w := &Worker{Store: s, Region: "local", Runner: r, Concurrency: 1, PackageDir: t.TempDir()}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	bad, _, err := s.Submit(ctx, bakery.Request{Package: "/etc/passwd", BaseID: "ami-00000000000000001", Region: "local"}, "ami-00000000000000001", "bad")
	if err != nil {
		t.Fatal(err)
	}
	if rec := bakerytest.Wait(t, s, bad.ID); rec.State != bakery.Failed || !strings.Contains(rec.Error, "refused by the worker") {
		t.Errorf("a bad request ended %s: %q", rec.State, rec.Error)
	}
	good, _, err := s.Submit(ctx, bakery.Request{Package: "app", BaseID: "ami-00000000000000001", Region: "local"}, "ami-00000000000000001", "good")
	if err != nil {
		t.Fatal(err)
	}
	if rec := bakerytest.Wait(t, s, good.ID); rec.State != bakery.Completed || rec.ImageID == "" {
		t.Errorf("a good request ended %s: %q", rec.State, rec.Error)
	}
	if len(r.Ran()) != 1 || r.Ran()[0] != "good" {
		t.Errorf("ran %v, want only the good bake", r.Ran())
	}
}

// The child gets its job typed on standard input, not as a command line.
func TestExecRunnerHandsTheJobOnStdin(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "aminate")
	script := "#!/bin/sh\n[ \"$1\" = " + bakery.ChildCommand + " ] || exit 9\ncat > " + filepath.Join(dir, "job.json") +
		"\necho '{\"image\": {\"id\": \"ami-00000000000000007\", \"name\": \"made\"}}'\n"
	if err := os.WriteFile(child, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &bakery.Record{ID: "b1", BaseID: "ami-00000000000000001", Request: bakery.Request{Package: "-x; rm -rf /", BaseName: "base", Region: "local"}}
	ims, err := (&ExecRunner{Binary: child, Args: []string{"--state-dir", dir}}).Run(context.Background(), rec, io.Discard)
	if err != nil || len(ims) != 1 || ims[0].ID != "ami-00000000000000007" || ims[0].Name != "made" {
		t.Fatalf("%v %v", ims, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "job.json"))
	var job bakery.QueuedBake
	if err := json.Unmarshal(b, &job); err != nil || !reflect.DeepEqual(job, bakery.QueuedBakeOf(rec)) {
		t.Errorf("the child read %s (%v)", b, err)
	}
}

// A bake for several architectures prints every image, and the worker
// records each with its architecture.
func TestExecRunnerReadsEveryArchitecturesImage(t *testing.T) {
	ims, err := printedImages([]byte(`{"arch_group": "bake-1", "image": {"id": "ami-00000000000000001", "name": "a-x86_64", "architecture": "x86_64"},
		"images": [{"id": "ami-00000000000000001", "name": "a-x86_64", "architecture": "x86_64"}, {"id": "ami-00000000000000002", "name": "a-arm64", "architecture": "arm64"}]}`))
	want := []bakery.Image{{ID: "ami-00000000000000001", Name: "a-x86_64", Arch: "x86_64"}, {ID: "ami-00000000000000002", Name: "a-arm64", Arch: "arm64"}}
	if err != nil || !reflect.DeepEqual(ims, want) {
		t.Errorf("%v, %v", ims, err)
	}
}

// A failed bake for several architectures that kept an image
// (keep_partial) reports it with its reason.
func TestExecRunnerReportsKeptImages(t *testing.T) {
	child := filepath.Join(t.TempDir(), "aminate")
	os.WriteFile(child, []byte("#!/bin/sh\necho '{\"image\": {\"id\": \"ami-00000000000000001\", \"name\": \"a\", \"architecture\": \"x86_64\"}}'\n"+
		"echo 'aminate: error: arm64: bake failed' >&2\nexit 1\n"), 0o755)
	ims, err := (&ExecRunner{Binary: child}).Run(context.Background(), &bakery.Record{ID: "b1"}, io.Discard)
	if err == nil || len(ims) != 1 || ims[0].Arch != "x86_64" {
		t.Errorf("%v, %v", ims, err)
	}
}

// A child that fails says why in its "aminate: error:" line.
func TestExecRunnerReportsTheChildsError(t *testing.T) {
	child := filepath.Join(t.TempDir(), "aminate")
	os.WriteFile(child, []byte("#!/bin/sh\necho 'aminate: error: bake x failed: dpkg said no' >&2\nexit 1\n"), 0o755)
	_, err := (&ExecRunner{Binary: child}).Run(context.Background(), &bakery.Record{ID: "b1"}, io.Discard)
	if err == nil || err.Error() != "bake x failed: dpkg said no" {
		t.Errorf("%v", err)
	}
}

// The worker verifies each image a bake made and keeps the verdict in
// the bake's record; a failed verification does not fail the bake.
func TestWorkerRecordsTheVerdict(t *testing.T) {
	s := bakerytest.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	verify := func(_ context.Context, region, _, image string) *bakery.Provenance {
		if region == "west" {
			return &bakery.Provenance{Error: "unknown signer: key sha256:ab is not in the trust file"}
		}
		return &bakery.Provenance{OK: true, Signer: "bakery", KeyID: "sha256:ab", Lineage: []bakery.Verdict{{Image: image, OK: true, Signer: "bakery"}}}
	}
	var done []chan struct{}
	for _, region := range []string{"local", "west"} {
		w := &Worker{Store: s, Region: region, Runner: &bakerytest.Runner{}, Concurrency: 1, Verify: verify}
		d := make(chan struct{})
		done = append(done, d)
		go func() { w.Run(ctx); close(d) }()
	}
	defer func() {
		cancel()
		for _, d := range done {
			<-d
		}
	}()
	for region, want := range map[string]bool{"local": true, "west": false} {
		req := bakery.Request{Package: "app", BaseID: "ami-00000000000000001", Region: region}
		b, _, err := s.Submit(ctx, req, "ami-00000000000000001", "app-"+region)
		if err != nil {
			t.Fatal(err)
		}
		rec := bakerytest.Wait(t, s, b.ID)
		p := rec.Provenance
		if rec.State != bakery.Completed || p == nil || p.OK != want || len(rec.Images) != 1 || rec.Images[0].Provenance == nil {
			t.Fatalf("%s: %s %q, provenance %+v", region, rec.State, rec.Error, p)
		}
		if want && (p.Signer != "bakery" || len(p.Lineage) != 1 || p.Lineage[0].Image != rec.ImageID) {
			t.Errorf("verified: %+v", p)
		}
		if !want && !strings.Contains(p.Error, "unknown signer") {
			t.Errorf("failed: %+v", p)
		}
	}
}

// The bakery's signing key and trust file reach the child in its job,
// as the settings attest.signing_key and attest.trust_file, and are not
// shown in the bake's log (its team reads it).
func TestExecRunnerHandsTheSigningKey(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "aminate")
	script := "#!/bin/sh\ncat > " + filepath.Join(dir, "job.json") + "\necho '{\"image\": {\"id\": \"ami-00000000000000007\", \"name\": \"made\"}}'\n"
	if err := os.WriteFile(child, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &bakery.Record{ID: "b1", Request: bakery.Request{Package: "app", BaseID: "ami-00000000000000001", Region: "local"}}
	e := &ExecRunner{Binary: child, SigningKey: "kms:alias/bakery", TrustFile: "/etc/aminator/trust.yml"}
	var log strings.Builder
	if _, err := e.Run(context.Background(), rec, &log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "alias/bakery") || strings.Contains(log.String(), "trust.yml") {
		t.Errorf("the bake's log shows the bakery's key: %s", log.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "job.json"))
	var job bakery.QueuedBake
	if err := json.Unmarshal(b, &job); err != nil {
		t.Fatal(err)
	}
	settings, _ := job.Settings()
	if settings["attest.signing_key"] != "kms:alias/bakery" || settings["attest.trust_file"] != "/etc/aminator/trust.yml" {
		t.Errorf("the child's settings: %v", settings)
	}
}
