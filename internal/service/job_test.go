package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// textConsole is a console of key=value lines into a buffer.
type textConsole struct {
	buf    bytes.Buffer
	closed bool
}

func (c *textConsole) Handler() slog.Handler       { return slog.NewTextHandler(&c.buf, nil) }
func (c *textConsole) Progress() progress.Reporter { return progress.Multi() }
func (c *textConsole) Close()                      { c.closed = true }
func consoleOf(c *textConsole) func() (Console, error) {
	return func() (Console, error) { return c, nil }
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load(config.Options{SystemDir: filepath.Join(dir, "etc"), UserDir: filepath.Join(dir, "home"), Env: []string{},
		// store_fs none: run as root, opening the local cloud must not make a store filesystem.
		Flags: map[string]string{"state_dir": filepath.Join(dir, "state"), "log_dir": filepath.Join(dir, "log"), "lock_dir": filepath.Join(dir, "lock"), "store_fs": "none"}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A job holds its lock while it runs, logs to its file at DEBUG and to the
// console, and leaves no lock behind.
func TestRunHere(t *testing.T) {
	cfg := testConfig(t)
	con := &textConsole{}
	var job *Job
	err := runHere(context.Background(), cfg, JobOptions{Kind: "test", Console: consoleOf(con)}, func(ctx context.Context, j *Job) error {
		job = j
		if !strings.HasPrefix(j.ID, "test-") {
			t.Errorf("job id %q", j.ID)
		}
		if !flock.Held(filepath.Join(cfg.LockDir, j.ID+".lock")) {
			t.Error("the job lock is not held while the job runs")
		}
		j.Log.Debug("only in the file")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.LockDir, job.ID+".lock")); !os.IsNotExist(err) {
		t.Errorf("the job lock is left: %v", err)
	}
	b, _ := os.ReadFile(job.LogPath)
	if !strings.Contains(string(b), "only in the file") || !strings.Contains(string(b), "test started") {
		t.Errorf("log file:\n%s", b)
	}
	if out := con.buf.String(); !strings.Contains(out, "test started") || strings.Contains(out, "only in the file") || !con.closed {
		t.Errorf("console (closed %v):\n%s", con.closed, out)
	}
}

// A job cancelled by a signal says it cleaned up.
func TestRunHereCancelled(t *testing.T) {
	cfg := testConfig(t)
	con := &textConsole{}
	ctx, cancel := context.WithCancel(context.Background())
	err := runHere(ctx, cfg, JobOptions{Kind: "bake", Console: consoleOf(con)}, func(ctx context.Context, j *Job) error {
		cancel()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(con.buf.String(), "bake cancelled; cleaned up") {
		t.Errorf("%v\n%s", err, con.buf.String())
	}
}

func TestRunJobNeedsRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root")
	}
	err := RunJob(testConfig(t), JobOptions{Kind: "bake"}, func(context.Context, *Job) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "bake needs root") {
		t.Errorf("%v", err)
	}
}

func TestRequestRefill(t *testing.T) {
	cfg := testConfig(t)
	list, err := newRefillList(cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer list.Unlock()
	t.Setenv(refillEnv, list.Path())
	requestRefill("snap-1")
	requestRefill("snap-2")
	if b, _ := os.ReadFile(list.Path()); string(b) != "snap-1\nsnap-2\n" {
		t.Errorf("refill list %q", b)
	}
}
