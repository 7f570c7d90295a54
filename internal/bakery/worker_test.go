package bakery

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// openStore starts a NATS server with JetStream in a temporary directory.
func openStore(t *testing.T) *Store {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	s, err := Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	s.Logger = slog.New(slog.DiscardHandler)
	return s
}

// runner records the bakes it runs.
type runner struct {
	mu  sync.Mutex
	ran []string
}

func (r *runner) Run(_ context.Context, rec *Record, _ io.Writer) (string, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, rec.ID)
	return "ami-00000000000000001", "img", nil
}

func wait(t *testing.T, s *Store, id string) *Record {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r, _, err := s.Get(context.Background(), id); err == nil && r.Done() {
			return r
		}
	}
	t.Fatalf("bake %s did not end", id)
	return nil
}

// A worker checks a request again: one that reached the queue without
// the API's checks (a package file of the worker's host) is refused, and
// a good one runs.
func TestWorkerChecksRequestsAgain(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{}
	w := &Worker{Store: s, Region: "local", Runner: r, Concurrency: 1, PackageDir: t.TempDir()}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	bad, _, err := s.Submit(ctx, Request{Package: "/etc/passwd", BaseID: "ami-00000000000000001", Region: "local"}, "ami-00000000000000001", "bad")
	if err != nil {
		t.Fatal(err)
	}
	if rec := wait(t, s, bad.ID); rec.State != Failed || !strings.Contains(rec.Error, "refused by the worker") {
		t.Errorf("a bad request ended %s: %q", rec.State, rec.Error)
	}
	good, _, err := s.Submit(ctx, Request{Package: "app", BaseID: "ami-00000000000000001", Region: "local"}, "ami-00000000000000001", "good")
	if err != nil {
		t.Fatal(err)
	}
	if rec := wait(t, s, good.ID); rec.State != Completed || rec.ImageID == "" {
		t.Errorf("a good request ended %s: %q", rec.State, rec.Error)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ran) != 1 || r.ran[0] != "good" {
		t.Errorf("ran %v, want only the good bake", r.ran)
	}
}

// The child gets its job typed on standard input, not as a command line.
func TestExecRunnerHandsTheJobOnStdin(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "aminate")
	script := "#!/bin/sh\n[ \"$1\" = " + JobCommand + " ] || exit 9\ncat > " + filepath.Join(dir, "job.json") +
		"\necho '{\"image\": {\"id\": \"ami-00000000000000007\", \"name\": \"made\"}}'\n"
	if err := os.WriteFile(child, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := &Record{ID: "b1", BaseID: "ami-00000000000000001", Request: Request{Package: "-x; rm -rf /", BaseName: "base", Region: "local"}}
	id, name, err := (&ExecRunner{Binary: child, Args: []string{"--state-dir", dir}}).Run(context.Background(), rec, io.Discard)
	if err != nil || id != "ami-00000000000000007" || name != "made" {
		t.Fatalf("%s %s %v", id, name, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "job.json"))
	var job Job
	if err := json.Unmarshal(b, &job); err != nil || !reflect.DeepEqual(job, JobOf(rec)) {
		t.Errorf("the child read %s (%v)", b, err)
	}
}

// A child that fails says why in its "aminate: error:" line.
func TestExecRunnerReportsTheChildsError(t *testing.T) {
	child := filepath.Join(t.TempDir(), "aminate")
	os.WriteFile(child, []byte("#!/bin/sh\necho 'aminate: error: bake x failed: dpkg said no' >&2\nexit 1\n"), 0o755)
	_, _, err := (&ExecRunner{Binary: child}).Run(context.Background(), &Record{ID: "b1"}, io.Discard)
	if err == nil || err.Error() != "bake x failed: dpkg said no" {
		t.Errorf("%v", err)
	}
}
