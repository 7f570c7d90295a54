package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
)

// liveLog is a bake's log while it runs: the worker's child writes it,
// stages are read from its lines as they come, and a flusher stores
// what has come so far, so the API serves a running bake's log and
// progress.
type liveLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte // the unfinished last line
	stages  []bakery.Stage
	changed bool // stages changed since the last flush
}

func (l *liveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if name, ok := stageOf(l.partial[:i]); ok {
			l.stages = append(l.stages, bakery.Stage{Name: name, Started: time.Now().UTC()})
			l.changed = true
		}
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > 64<<10 { // no stage line is this long
		l.partial = nil
	}
	return len(p), nil
}

// snapshot returns the log so far and its stages, and whether the stages
// changed since the last snapshot.
func (l *liveLog) snapshot() (log []byte, stages []bakery.Stage, changed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	changed, l.changed = l.changed, false
	return bytes.Clone(l.buf.Bytes()), append([]bakery.Stage(nil), l.stages...), changed
}

// stageOf reads the stage a log line starts: slog's text (msg="stage
// NAME" stage=NAME) or JSON ({"msg":"stage NAME","stage":"NAME"}).
func stageOf(line []byte) (string, bool) {
	s := strings.TrimSpace(string(line))
	if strings.HasPrefix(s, "{") {
		var v struct{ Msg, Stage string }
		if json.Unmarshal([]byte(s), &v) == nil && v.Stage != "" && v.Msg == "stage "+v.Stage {
			return v.Stage, true
		}
		return "", false
	}
	if !strings.Contains(s, "level=INFO") {
		return "", false
	}
	msg, ok1 := textValue(s, "msg")
	stage, ok2 := textValue(s, "stage")
	if !ok1 || !ok2 || stage == "" || msg != "stage "+stage {
		return "", false
	}
	return stage, true
}

// textValue reads key=value (quoted or bare) from a slog text line.
func textValue(line, key string) (string, bool) {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return "", false
	}
	rest := line[i+len(key)+2:]
	if strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", false
		}
		v, err := strconv.Unquote(q)
		return v, err == nil
	}
	v, _, _ := strings.Cut(rest, " ")
	return v, true
}

// defaultLogFlush is how often a running bake's log and stages are
// stored (when they changed).
const defaultLogFlush = time.Second

// errStale skips an update of a record another worker has taken over.
var errStale = errors.New("the bake is no longer this worker's")

// flushLive stores a running bake's log and stages every interval until
// ctx ends. Its record is changed only while it is still this worker's
// claim of the bake.
func (w *Worker) flushLive(ctx context.Context, id string, claimed int, l *liveLog) {
	every := w.LogFlush
	if every <= 0 {
		every = defaultLogFlush
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	stored := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		log, stages, changed := l.snapshot()
		if len(log) > stored {
			if err := w.Store.PutLog(ctx, id, bytes.NewReader(log)); err == nil {
				stored = len(log)
			}
		}
		if changed {
			w.Store.Update(ctx, id, func(r *bakery.Record) error {
				if r.Worker != w.Name || r.Attempts != claimed || r.State != bakery.Running {
					return errStale
				}
				r.Stages = stages
				return nil
			})
		}
	}
}
