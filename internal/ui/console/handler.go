package console

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// The records internal/engine/undo logs for a stage, which become the
// console's `==>` lines: INFO "stage NAME" (stage=NAME) when it starts,
// DEBUG "stage done" or "stage failed" (stage=NAME, took=DURATION) when it
// ends.
const (
	stageKey    = "stage"
	tookKey     = "took"
	stageDone   = "stage done"
	stageFailed = "stage failed"
)

// handler renders records as lines a person reads: stage lines, and
// "message: subject (key value, ...)" sentences indented under them.
type handler struct {
	c      *Console
	attrs  []slog.Attr
	prefix string // group prefix for keys
}

// Enabled is true for DEBUG too: a stage's end is a DEBUG record.
func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), h.qualify(as)...)
	return &n
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.prefix = h.prefix + name + "."
	return &n
}

func (h *handler) qualify(as []slog.Attr) []slog.Attr {
	if h.prefix == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: h.prefix + a.Key, Value: a.Value}
	}
	return out
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	var rec []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		rec = append(rec, a)
		return true
	})
	attrs = append(attrs, h.qualify(rec)...)
	if stage, took, ok := stageEvent(r, attrs); ok {
		if took < 0 {
			h.c.stageStart(stage)
		} else {
			h.c.stageEnd(stage, took, r.Message == stageFailed)
		}
		return nil
	}
	if r.Level < slog.LevelInfo && !h.c.debug {
		return nil
	}
	h.c.print(h.c.line(r.Level, r.Message, attrs) + "\n")
	return nil
}

// stageEvent recognises a stage's start (took < 0) or end.
func stageEvent(r slog.Record, attrs []slog.Attr) (stage string, took time.Duration, ok bool) {
	took = -1
	for _, a := range attrs {
		switch a.Key {
		case stageKey:
			stage = a.Value.String()
		case tookKey:
			if a.Value.Kind() == slog.KindDuration {
				took = a.Value.Duration()
			}
		}
	}
	switch {
	case stage == "":
		return "", 0, false
	case r.Message == "stage "+stage && r.Level == slog.LevelInfo:
		return stage, -1, true
	case (r.Message == stageDone || r.Message == stageFailed) && took >= 0:
		return stage, took, true
	}
	return "", 0, false
}

// line renders one record.
func (c *Console) line(l slog.Level, msg string, attrs []slog.Attr) string {
	s := "    " + sentence(msg, attrs)
	switch {
	case l >= slog.LevelError:
		return c.paint(red, "    error: "+strings.TrimPrefix(s, "    "))
	case l >= slog.LevelWarn:
		return c.paint(yellow, "    warning: "+strings.TrimPrefix(s, "    "))
	case l < slog.LevelInfo:
		return c.paint(dim, s)
	}
	return s
}

// skipKeys are attributes a sentence leaves out.
var skipKeys = map[string]bool{"cmd": true}

// sentence renders a message and its attributes without key=value: the
// error (or else the first attribute) is the message's subject, the rest
// follow in parentheses as "key value".
func sentence(msg string, attrs []slog.Attr) string {
	var kept []slog.Attr
	subject := -1
	for _, a := range attrs {
		if skipKeys[a.Key] || value(a) == "" {
			continue
		}
		if a.Key == "err" && subject < 0 {
			subject = len(kept)
		}
		kept = append(kept, a)
	}
	if len(kept) == 0 {
		return msg
	}
	if subject < 0 {
		subject = 0
	}
	s := msg + ": " + value(kept[subject])
	var rest []string
	for i, a := range kept {
		if i != subject {
			rest = append(rest, keyWords(a.Key)+" "+value(a))
		}
	}
	if len(rest) > 0 {
		s += " (" + strings.Join(rest, ", ") + ")"
	}
	return s
}

func keyWords(k string) string {
	switch {
	case k == "bytes":
		return "size"
	case strings.HasSuffix(k, "_bytes"):
		k = strings.TrimSuffix(k, "_bytes") + " size"
	}
	return strings.ReplaceAll(k, "_", " ")
}

// value renders an attribute's value for a person: durations rounded,
// byte counts in KiB/MiB/GiB, errors and long text by their first line.
func value(a slog.Attr) string {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		return Duration(v.Duration())
	case slog.KindInt64:
		if a.Key == "bytes" || strings.HasSuffix(a.Key, "_bytes") {
			return humanize.IBytes(uint64(max(v.Int64(), 0)))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			return firstLine(err.Error())
		}
	}
	return firstLine(v.String())
}

func firstLine(s string) string {
	if first, _, cut := strings.Cut(s, "\n"); cut {
		return first + " …"
	}
	return s
}

// Duration renders d for a person: 0.4s, 12.3s, 2m05s, 1h02m.
func Duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

type colour string

const (
	bold   colour = "\x1b[1m"
	dim    colour = "\x1b[2m"
	red    colour = "\x1b[31m"
	yellow colour = "\x1b[33m"
)

func (c *Console) paint(k colour, s string) string {
	if !c.color {
		return s
	}
	return string(k) + s + "\x1b[0m"
}
