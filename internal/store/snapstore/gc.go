package snapstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aminator-go/aminator/internal/sys/crashpoint"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// GCKinds are the kinds of items the store's gc removes.
var GCKinds = []string{gcreport.Chunk, gcreport.Temporary, gcreport.Clone}

// GCPlan is what the store's gc would remove: chunks no manifest names,
// leftover temporary files, and clones without a manifest.
type GCPlan struct {
	c *Chunks
	// Items are the planned items, chunks first.
	Items []gcreport.Item
	// LiveChunks is how many chunks the manifests named when planned.
	LiveChunks int
	// Unreadable are the manifests that could not be read, and why. While
	// there is one, no chunk is collected (it may name any of them); the
	// rest of gc goes on.
	Unreadable []gcreport.Item
}

// PlanGC lists what gc would remove, once the snapshots named in deleting
// are deleted (their chunks unused then, their clones gone with them). It
// waits for running snapshots to finish (their chunks are named by no
// manifest yet) and holds off new ones while it looks. A manifest it
// cannot read is reported in the plan, not an error: chunks are then
// kept, temporary files and clones still collected.
func (c *Chunks) PlanGC(ctx context.Context, deleting ...string) (*GCPlan, error) {
	l, err := flock.Exclusive(ctx, c.gcLock())
	if err != nil {
		return nil, fmt.Errorf("plan gc: %w", err)
	}
	defer l.Unlock()
	live, ids, bad, err := c.liveChunks(deleting...)
	if err != nil {
		return nil, err
	}
	crashpoint.Hit("gc-plan")
	p := &GCPlan{c: c, LiveChunks: len(live), Unreadable: bad}
	if len(bad) == 0 {
		if p.Items, err = c.unusedChunks(live); err != nil {
			return nil, fmt.Errorf("plan gc: %w", err)
		}
	}
	tmps, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, t := range tmps {
		p.Items = append(p.Items, gcreport.Item{Kind: gcreport.Temporary, ID: t.Name(), Reason: "left by an interrupted write"})
	}
	have := map[string]bool{}
	for _, id := range append(ids, deleting...) { // Delete removes the latter's clones
		have[id] = true
	}
	clones, _ := os.ReadDir(filepath.Join(c.dir, "cache"))
	for _, cl := range clones {
		if !have[strings.TrimSuffix(cl.Name(), ".img")] {
			p.Items = append(p.Items, gcreport.Item{Kind: gcreport.Clone, ID: cl.Name(), Reason: "no snapshot of its name"})
		}
	}
	return p, nil
}

// unusedChunks lists the chunks not in live.
func (c *Chunks) unusedChunks(live map[string]bool) ([]gcreport.Item, error) {
	var out []gcreport.Item
	err := filepath.WalkDir(filepath.Join(c.dir, "chunks"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || live[d.Name()] {
			return err
		}
		it := gcreport.Item{Kind: gcreport.Chunk, ID: d.Name(), Reason: "no snapshot uses it"}
		if info, err := d.Info(); err == nil {
			it.Bytes = info.Size()
		}
		out = append(out, it)
		return nil
	})
	return out, err
}

// liveChunks reads every manifest but those of the snapshots named in
// except: the chunks they name, the snapshots, and the manifests it could
// not read (with why).
func (c *Chunks) liveChunks(except ...string) (map[string]bool, []string, []gcreport.Item, error) {
	all, err := c.Snapshots()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gc: %w", err)
	}
	skip := map[string]bool{}
	for _, id := range except {
		skip[id] = true
	}
	live := map[string]bool{}
	var ids []string
	var bad []gcreport.Item
	for _, id := range all {
		if skip[id] {
			continue
		}
		ids = append(ids, id)
		m, err := c.LoadManifest(id)
		if err != nil {
			bad = append(bad, gcreport.Item{Kind: gcreport.Manifest, ID: id,
				Reason: fmt.Sprintf("unreadable, so no chunk is collected until it is fixed or removed: %v", err)})
			continue
		}
		for _, h := range m.Chunks {
			if h != "" {
				live[h] = true
			}
		}
	}
	return live, ids, bad, nil
}

// Planned reports the plan as a dry run.
func (p *GCPlan) Planned() *gcreport.Report {
	r := gcreport.New("local", true, GCKinds...)
	r.Removed = append(r.Removed, p.Items...)
	r.Skipped = append(r.Skipped, p.Unreadable...)
	r.LiveChunks = p.LiveChunks
	return r
}

// Execute removes the planned items. Under the gc lock again (no snapshot
// is being stored), it reads the manifests again and skips a chunk a
// snapshot stored since names, or a clone whose snapshot now exists; an
// item already gone is skipped too.
func (p *GCPlan) Execute(ctx context.Context) (*gcreport.Report, error) {
	c := p.c
	r := gcreport.New("local", false, GCKinds...)
	l, err := flock.Exclusive(ctx, c.gcLock())
	if err != nil {
		return r, fmt.Errorf("gc: %w", err)
	}
	defer l.Unlock()
	live, ids, bad, err := c.liveChunks()
	if err != nil {
		return r, err
	}
	r.LiveChunks = len(live)
	r.Skipped = append(r.Skipped, bad...)
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	var errs []error
	for _, it := range p.Items {
		if err := ctx.Err(); err != nil {
			return r, errors.Join(append(errs, err)...)
		}
		var path string
		switch it.Kind {
		case gcreport.Chunk:
			if len(bad) > 0 {
				r.Skip(it, "a manifest is unreadable")
				continue
			}
			if live[it.ID] {
				r.Skip(it, "a snapshot stored since uses it")
				continue
			}
			path = c.chunkPath(it.ID)
		case gcreport.Temporary:
			path = filepath.Join(c.dir, "tmp", it.ID)
		case gcreport.Clone:
			if have[strings.TrimSuffix(it.ID, ".img")] {
				r.Skip(it, "its snapshot was stored since")
				continue
			}
			path = filepath.Join(c.dir, "cache", it.ID)
		}
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			r.Skip(it, "gone")
			continue
		}
		remove := os.Remove
		if it.Kind == gcreport.Temporary {
			remove = os.RemoveAll
		}
		if err := remove(path); err != nil {
			if it.Kind != gcreport.Chunk {
				r.Skip(it, err.Error()) // a leftover, not an error
				continue
			}
			errs = append(errs, fmt.Errorf("gc: %w", err))
			continue
		}
		crashpoint.Hit("gc-remove")
		c.log.Debug("gc removed", slog.String("kind", it.Kind), slog.String("id", it.ID), slog.String("reason", it.Reason))
		r.Remove(it)
	}
	return r, errors.Join(errs...)
}
