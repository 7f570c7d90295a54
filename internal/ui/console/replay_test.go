package console

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/engine/undo"
	"github.com/aminator-go/aminator/internal/testutil"
)

// A stage drawn while it runs leaves only its final line on the screen.
func TestNoStaleStageLine(t *testing.T) {
	var out bytes.Buffer
	c, _ := New(&out, Options{Width: 100, Live: true})
	log := slog.New(c.Handler())
	undo.Step(context.Background(), log, "boot test", func(context.Context) error {
		time.Sleep(400 * time.Millisecond)
		return nil
	})
	log.Info("boot test passed", "image", "ami-1")
	c.Close()
	got := strings.Join(testutil.TerminalLines(out.String()), "\n")
	if !regexp.MustCompile(`^==> boot test  0\.4s\n    boot test passed: ami-1$`).MatchString(got) {
		t.Errorf("screen:\n%s\nraw: %q", got, out.String())
	}
}
