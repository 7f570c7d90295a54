package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/undo"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

var (
	ansi     = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	keyValue = regexp.MustCompile(`(^|\s)(time|level|msg)=`)
)

// bake logs what a bake logs, through a real pipeline.
func bake(t *testing.T, log *slog.Logger, ctx context.Context) {
	t.Helper()
	log.Info("bake started", "id", "bake-1", "log", "/var/log/aminator/bake-1.log")
	p := undo.New(log)
	if err := p.Stage(ctx, "resolve base", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	log.Info("base image", "id", "ami-1", "name", "debian-base")
	p.Stage(ctx, "snapshot and register", func(ctx context.Context) error {
		bar := progress.Start(ctx, "storing snapshot", 4<<20, progress.Bytes)
		for i := 0; i < 4; i++ {
			bar.Add(1 << 20)
			time.Sleep(30 * time.Millisecond)
		}
		bar.Done()
		log.Info("volume created", "volume", "vol-1", "bytes", int64(2<<30))
		return nil
	})
	log.Warn("apt-get update failed; retrying", "attempt", 1, "err", errors.New("E: Failed to fetch\nmore"))
	log.Debug("exec", "argv", "apt-get -y install hello")
	p.Stage(ctx, "provision", func(context.Context) error { return errors.New("E: Unable to locate package nopkg") })
}

func TestPrettyLiveHasStageLinesAndNoKeyValue(t *testing.T) {
	var out bytes.Buffer
	c, err := New(&out, Options{Width: 100, Live: true})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Pretty() {
		t.Fatal("a terminal with format auto is not pretty")
	}
	log := slog.New(c.Handler())
	bake(t, log, progress.With(context.Background(), c.Progress()))
	c.Table("bake done in 12.3s", []Row{{"image", "ami-1"}, {"name", "hello-1"}, {"tags", "appversion  hello-1"}, {"", "creator  me"}})
	c.Close()
	text := ansi.ReplaceAllString(out.String(), "")
	for _, want := range []string{
		"    bake started: bake-1 (log /var/log/aminator/bake-1.log)\n",
		"==> resolve base  0.0s\n",
		"    base image: ami-1 (name debian-base)\n",
		"    volume created: vol-1 (size 2.0 GiB)\n",
		"    warning: apt-get update failed; retrying: E: Failed to fetch … (attempt 1)\n",
		"==> provision failed after 0.0s\n",
		"==> bake done in 12.3s\n    image  ami-1\n    name   hello-1\n    tags   appversion  hello-1\n           creator  me\n",
		"storing snapshot", // the bar, drawn at least once
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`==> snapshot and register  0\.[1-9]s\n`).MatchString(text) {
		t.Errorf("no timed stage line for the snapshot:\n%s", text)
	}
	for _, l := range strings.Split(text, "\n") {
		if keyValue.MatchString(l) {
			t.Errorf("key=value line on the terminal: %q", l)
		}
	}
	if strings.Contains(text, "exec") {
		t.Errorf("a DEBUG record reached the console without --debug:\n%s", text)
	}
	// The final screen: no bar or running stage is left drawn.
	final := out.String()
	if i := strings.LastIndex(final, "\x1b[J"); i >= 0 && strings.Contains(final[i:], "⠋") {
		t.Errorf("a spinner is left on the screen: %q", final[i:])
	}
}

func TestPrettyNotLivePrintsPlainLines(t *testing.T) {
	var out bytes.Buffer
	c, _ := New(&out, Options{Width: 80})
	bake(t, slog.New(c.Handler()), progress.With(context.Background(), c.Progress()))
	c.Close()
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("escape sequences without live drawing: %q", out.String())
	}
	if !strings.Contains(out.String(), "==> resolve base  0.0s\n    base image: ami-1 (name debian-base)\n") {
		t.Errorf("stage line:\n%s", out.String())
	}
}

func TestNotATerminalKeepsKeyValue(t *testing.T) {
	var out bytes.Buffer
	c, _ := New(&out, Options{Live: true}) // a buffer is no terminal
	if c.Pretty() {
		t.Fatal("pretty on a non-terminal")
	}
	bake(t, slog.New(c.Handler()), progress.With(context.Background(), c.Progress()))
	c.Close()
	for _, want := range []string{`level=INFO msg="stage resolve base" stage="resolve base"`, "msg=\"base image\" id=ami-1 name=debian-base"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "==>") || strings.Contains(out.String(), "storing snapshot") {
		t.Errorf("terminal output on a non-terminal:\n%s", out.String())
	}
}

func TestFormatsOverrideTheTerminal(t *testing.T) {
	var out bytes.Buffer
	c, _ := New(&out, Options{Format: "json", Width: 80})
	slog.New(c.Handler()).Info("base image", "id", "ami-1")
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec["msg"] != "base image" || rec["id"] != "ami-1" {
		t.Errorf("json: %v %v", rec, err)
	}
	out.Reset()
	c, _ = New(&out, Options{Format: "text", Width: 80})
	slog.New(c.Handler()).Info("base image", "id", "ami-1")
	if !strings.Contains(out.String(), `level=INFO msg="base image" id=ami-1`) {
		t.Errorf("text: %s", out.String())
	}
	if _, err := New(&out, Options{Format: "yaml"}); err == nil {
		t.Error("format yaml accepted")
	}
}

func TestSentence(t *testing.T) {
	for _, tc := range []struct {
		msg   string
		attrs []slog.Attr
		want  string
	}{
		{"chroot ready", []slog.Attr{slog.String("path", "/mnt")}, "chroot ready: /mnt"},
		{"package installed", []slog.Attr{slog.String("name", "hello"), slog.String("version", "2.10-3"), slog.String("arch", "amd64")}, "package installed: hello (version 2.10-3, arch amd64)"},
		{"cleanup failed", []slog.Attr{slog.String("step", "unmount"), slog.Any("err", errors.New("busy"))}, "cleanup failed: busy (step unmount)"},
		{"dry run", []slog.Attr{slog.String("base", "ami-1"), slog.Int64("volume_bytes", 1<<30), slog.String("name", "")}, "dry run: ami-1 (volume size 1.0 GiB)"},
		{"boot test passed", []slog.Attr{slog.String("image", "ami-1"), slog.Duration("took", 19200*time.Millisecond)}, "boot test passed: ami-1 (took 19.2s)"},
		{"apt-get: E: x", []slog.Attr{slog.String("cmd", "apt-get")}, "apt-get: E: x"},
	} {
		if got := sentence(tc.msg, tc.attrs); got != tc.want {
			t.Errorf("sentence(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond: "0.4s", 12340 * time.Millisecond: "12.3s", 125 * time.Second: "2m05s", 62 * time.Minute: "1h02m",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
}
