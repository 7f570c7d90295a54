// Package console is what a person sees of aminator on a terminal: one
// `==> stage` line per stage with its time (Packer's convention), plain
// sentences for the other messages, progress bars for long steps, and a
// short table at the end. Bars are drawn by github.com/vbauerster/mpb and
// terminals are detected with golang.org/x/term. Where standard error is
// not a terminal, or with --log-format text or json, the console is
// slog's key=value (or JSON) lines, as scripts and log collectors expect.
package console

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"golang.org/x/term"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// Formats are the values of --log-format.
var Formats = []string{"auto", "text", "json"}

// Options configure a console.
type Options struct {
	// Format is auto (pretty on a terminal, text otherwise), text or json.
	Format string
	// Debug shows DEBUG records too.
	Debug bool
	// Live draws a running stage's line and progress bars, redrawn in
	// place; the owner must call Close. Without it stage lines are printed
	// when stages end and bars are not shown.
	Live bool
	// Width, when positive, treats the writer as a terminal this many
	// columns wide (tests).
	Width int
}

// Console is a command's console output.
type Console struct {
	w       io.Writer
	pretty  bool
	live    bool
	color   bool
	debug   bool
	width   int
	handler slog.Handler

	mu     sync.Mutex
	p      *mpb.Progress
	cw     *termWriter
	stages map[string]*mpb.Bar
	bars   map[*mpb.Bar]bool
	closed bool
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ValidFormat reports whether f is a --log-format value.
func ValidFormat(f string) bool {
	for _, x := range Formats {
		if f == x {
			return true
		}
	}
	return f == ""
}

// New makes the console writing to w.
func New(w io.Writer, o Options) (*Console, error) {
	if !ValidFormat(o.Format) {
		return nil, fmt.Errorf("log format %q: use %s", o.Format, strings.Join(Formats, ", "))
	}
	c := &Console{w: w, debug: o.Debug, width: o.Width, stages: map[string]*mpb.Bar{}, bars: map[*mpb.Bar]bool{}}
	tty := o.Width > 0 || IsTerminal(w)
	switch o.Format {
	case "text":
		c.handler = logging.Console(w, o.Debug)
	case "json":
		c.handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level(o.Debug)})
	default:
		if !tty {
			c.handler = logging.Console(w, o.Debug)
			break
		}
		c.pretty, c.live = true, o.Live
		c.color = o.Width == 0 && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
		c.handler = &handler{c: c}
	}
	return c, nil
}

func level(debug bool) slog.Level {
	if debug {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Handler is the console's slog handler.
func (c *Console) Handler() slog.Handler { return c.handler }

// Pretty reports whether the console is for a person (a terminal and
// --log-format auto).
func (c *Console) Pretty() bool { return c.pretty }

// Progress is where long steps report; bars are drawn only on a live
// pretty console.
func (c *Console) Progress() progress.Reporter { return c }

// Row is one row of a result table; an empty Key continues the row above.
type Row struct{ Key, Value string }

// Table prints a heading as a stage line and rows under it, aligned.
func (c *Console) Table(heading string, rows []Row) {
	var b bytes.Buffer
	b.WriteString(c.paint(bold, "==> "+heading) + "\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "    %s\t%s\n", r.Key, r.Value)
	}
	tw.Flush()
	c.print(b.String())
}

// print writes whole lines above the bars (or straight out when none are
// drawn).
func (c *Console) print(s string) {
	c.mu.Lock()
	p := c.p
	c.mu.Unlock()
	if p != nil {
		if _, err := p.Write([]byte(s)); err == nil {
			return
		}
	}
	io.WriteString(c.w, s)
}

// progressLocked starts the bar container; c.mu is held.
func (c *Console) progressLocked() *mpb.Progress {
	if c.p == nil && !c.closed {
		fixed := c.width > 0
		c.cw = &termWriter{Writer: cupwriter.New(c.w, fixed), width: c.width}
		c.p = mpb.New(mpb.WithConsoleWriter(c.cw), mpb.WithAutoRefresh(), mpb.WithRefreshRate(refresh))
	}
	return c.p
}

// Close removes what is still drawn and writes what is pending. The
// console prints straight to its writer afterwards.
func (c *Console) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	p, cw := c.p, c.cw
	var live []*mpb.Bar
	for b := range c.bars {
		live = append(live, b)
	}
	for _, b := range c.stages {
		live = append(live, b)
	}
	c.mu.Unlock()
	if p == nil {
		return
	}
	for _, b := range live {
		b.Abort(true)
	}
	p.Wait()
	c.mu.Lock()
	c.p = nil
	c.mu.Unlock()
	cw.Flush(0) // lines written after the last redraw
}

// termWriter is mpb's terminal writer; with width set it pretends to be a
// terminal of that width.
type termWriter struct {
	*cupwriter.Writer
	width int
}

func (t *termWriter) IsTerminal() bool { return t.width > 0 || t.Writer.IsTerminal() }

func (t *termWriter) GetTermSize() (int, int, error) {
	if t.width > 0 {
		return t.width, 40, nil
	}
	w, h, err := t.Writer.GetTermSize()
	if err == nil && w <= 0 { // a terminal that does not say its size
		w, h = 80, 24
	}
	return w, h, err
}
