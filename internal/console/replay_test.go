package console

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/pipeline"
)

var redraw = regexp.MustCompile(`^\x1b\[(\d+)A\x1b\[J`)

// replay is what a terminal shows at the end: lines, with bars redrawn in
// place (cursor up N lines, erase to the end).
func replay(raw string) []string {
	var lines []string
	var cur strings.Builder
	for i := 0; i < len(raw); {
		if m := redraw.FindStringSubmatch(raw[i:]); m != nil {
			n, _ := strconv.Atoi(m[1])
			lines = lines[:max(0, len(lines)-n)]
			cur.Reset()
			i += len(m[0])
			continue
		}
		if raw[i] == '\n' {
			lines = append(lines, ansi.ReplaceAllString(cur.String(), ""))
			cur.Reset()
		} else {
			cur.WriteByte(raw[i])
		}
		i++
	}
	return lines
}

// A stage drawn while it runs leaves only its final line on the screen.
func TestNoStaleStageLine(t *testing.T) {
	var out bytes.Buffer
	c, _ := New(&out, Options{Width: 100, Live: true})
	log := slog.New(c.Handler())
	pipeline.Step(context.Background(), log, "boot test", func(context.Context) error {
		time.Sleep(400 * time.Millisecond)
		return nil
	})
	log.Info("boot test passed", "image", "ami-1")
	c.Close()
	got := strings.Join(replay(out.String()), "\n")
	if !regexp.MustCompile(`^==> boot test  0\.4s\n    boot test passed: ami-1$`).MatchString(got) {
		t.Errorf("screen:\n%s\nraw: %q", got, out.String())
	}
}
