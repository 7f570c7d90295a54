// Package gcreport is what garbage collection says, for every cloud: the
// items a plan would remove (and why), then what its execution removed and
// what it skipped because it changed since it was planned. The local and
// the ec2 cloud's gc both return a Report, and the CLI prints every Report
// the same way, as text or JSON.
//
// Maintenance plans before it executes (restic's PlanPrune/Execute): a
// dry run is a plan that is not executed, and executing re-checks each
// item before it removes it.
package gcreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The kinds of items gc removes. Each has a fixed place in the text and
// the JSON (see kinds).
const (
	// The local cloud's.
	OrphanedVolume  = "orphaned_volume"       // a volume whose bake is gone
	PendingSnapshot = "pending_snapshot"      // a snapshot whose maker died
	Unregistered    = "unregistered_snapshot" // a completed snapshot its killed bake never registered
	Manifest        = "manifest"              // a stored snapshot without a registry row
	Chunk           = "chunk"                 // a chunk no manifest names
	Temporary       = "temporary"             // a leftover of an interrupted store write
	Clone           = "clone"                 // a reflink clone without a manifest
	Scratch         = "scratch"               // scratch a killed job left
	Stale           = "stale"                 // a killed job's lock or empty mount point
	// The ec2 cloud's.
	Volume   = "volume"   // a volume a bake on this host left
	Snapshot = "snapshot" // a snapshot a bake on this host (or a push from it) left, no image uses
	Copy     = "copy"     // an image copy in another region a killed bake left (REGION/AMI)
	// An S3 bucket's.
	Bundle = "bundle" // an S3 bundle no image uses (its manifest location)
	// The state directory's attestation store, for any cloud.
	Attestation = "attestation" // the SBOMs and provenance of an image the cloud no longer has
)

// kind is how a kind is shown: in the text, its label, and whether its
// ids are listed; in the JSON, the key of its list of ids, or, for the
// store's kinds (too many to list), of its count in "store".
type kind struct {
	name, label string
	ids         bool
	key         string
	store       bool
}

var kinds = []kind{
	{OrphanedVolume, "orphaned volumes", true, "orphaned_volumes", false},
	{PendingSnapshot, "unfinished snapshots", true, "pending_snapshots", false},
	{Unregistered, "unregistered snapshots", true, "unregistered_snapshots", false},
	{Manifest, "manifests without a snapshot", true, "manifests", false},
	{Chunk, "unused chunks", false, "chunks", true},
	{Temporary, "temporary files", false, "temporary", true},
	{Clone, "stale clones", false, "clones", true},
	{Scratch, "scratch leftovers", false, "scratch", false},
	{Stale, "stale job locks and mount points", false, "stale", false},
	{Volume, "volumes", true, "volumes", false},
	{Snapshot, "snapshots", true, "snapshots", false},
	{Copy, "copies in other regions", true, "copies", false},
	{Bundle, "S3 bundles", true, "bundles", false},
	{Attestation, "documents of removed images", true, "attestations", false},
}

// Item is one thing gc removes.
type Item struct {
	Kind string `json:"kind"`
	// ID names it: a volume or snapshot id, a chunk's hash, a path.
	ID string `json:"id"`
	// Reason says why it is removed or, for a skipped item, why not.
	Reason string `json:"reason,omitempty"`
	// Bytes is its size, where known.
	Bytes int64 `json:"bytes,omitempty"`
}

// Report says what gc removed or, for a dry run, would remove.
type Report struct {
	// Cloud is the cloud collected: "local" or "ec2".
	Cloud string
	// DryRun: Removed is what would be removed; nothing was.
	DryRun bool
	// Removed are the items removed (in a dry run: planned), in order.
	Removed []Item
	// Skipped are planned items that changed before they were removed
	// (taken by a bake, completed, in use again, gone); Reason says how.
	Skipped []Item
	// Running are the resources of bakes still running, left alone.
	Running []Item
	// LiveChunks is how many chunks snapshots use (local cloud).
	LiveChunks int
	kinds      []string
}

// New makes an empty report of a cloud whose gc removes the given kinds
// (the text and JSON name each of them, even when none was removed).
func New(cloud string, dryRun bool, kinds ...string) *Report {
	return &Report{Cloud: cloud, DryRun: dryRun, kinds: kinds}
}

// Remove records an item removed (or planned).
func (r *Report) Remove(it Item) { r.Removed = append(r.Removed, it) }

// Skip records a planned item left alone, and why.
func (r *Report) Skip(it Item, why string) {
	it.Reason = why
	r.Skipped = append(r.Skipped, it)
}

// Merge appends o's items to r's; its kinds join r's.
func (r *Report) Merge(o *Report) {
	if o == nil {
		return
	}
	r.Removed = append(r.Removed, o.Removed...)
	r.Skipped = append(r.Skipped, o.Skipped...)
	r.Running = append(r.Running, o.Running...)
	r.LiveChunks += o.LiveChunks
	for _, k := range o.kinds {
		if !r.has(k) {
			r.kinds = append(r.kinds, k)
		}
	}
}

func (r *Report) has(k string) bool {
	for _, x := range r.kinds {
		if x == k {
			return true
		}
	}
	return false
}

// IDs lists the ids of the removed items of a kind.
func (r *Report) IDs(kind string) []string {
	out := []string{}
	for _, it := range r.Removed {
		if it.Kind == kind {
			out = append(out, it.ID)
		}
	}
	return out
}

// Bytes is the size of the removed items of a kind.
func (r *Report) Bytes(kind string) int64 {
	var n int64
	for _, it := range r.Removed {
		if it.Kind == kind {
			n += it.Bytes
		}
	}
	return n
}

// Plan is maintenance planned and not yet done.
type Plan interface {
	// Planned is the report of a dry run: what Execute would remove, and why.
	Planned() *Report
	// Execute removes the planned items, each re-checked first: one that
	// changed since it was planned is skipped and reported.
	Execute(ctx context.Context) (*Report, error)
}

// Join is the plans as one: its report is theirs merged, in order, and it
// executes each in turn (a failure does not stop the others).
func Join(plans ...Plan) Plan { return joined(plans) }

type joined []Plan

func (j joined) Planned() *Report {
	var r *Report
	for _, p := range j {
		if r == nil {
			r = p.Planned()
			continue
		}
		r.Merge(p.Planned())
	}
	return r
}

func (j joined) Execute(ctx context.Context) (*Report, error) {
	var r *Report
	var errs []error
	for _, p := range j {
		pr, err := p.Execute(ctx)
		errs = append(errs, err)
		if r == nil {
			r = pr
			continue
		}
		r.Merge(pr)
	}
	return r, errors.Join(errs...)
}

// Run executes p, or with dryRun only reports it.
func Run(ctx context.Context, p Plan, dryRun bool) (*Report, error) {
	if dryRun {
		return p.Planned(), nil
	}
	return p.Execute(ctx)
}

// MarshalJSON writes, under the keys the CLI always printed, the ids of
// each kind's removed items (the store's kinds counted in "store"), the
// running bakes' resources, and the skipped items with their reasons.
func (r *Report) MarshalJSON() ([]byte, error) {
	out := map[string]any{"cloud": r.Cloud, "dry_run": r.DryRun, "skipped": nonNil(r.Skipped)}
	store := map[string]any{}
	for _, k := range kinds {
		if !r.has(k.name) {
			continue
		}
		if k.store {
			store[k.key] = len(r.IDs(k.name))
			if k.name == Chunk {
				store["bytes"] = r.Bytes(Chunk)
				store["live_chunks"] = r.LiveChunks
			}
			continue
		}
		out[k.key] = r.IDs(k.name)
	}
	if len(store) > 0 {
		out["store"] = store
	}
	if r.has(Volume) || len(r.Running) > 0 {
		ids := []string{}
		for _, it := range r.Running {
			ids = append(ids, it.ID)
		}
		out["running"] = ids
	}
	return json.Marshal(out)
}

func nonNil(s []Item) []Item {
	if s == nil {
		return []Item{}
	}
	return s
}

// WriteText writes the report as one line, "removed" (or "would remove")
// and each kind's count, then a line for each skipped item.
func (r *Report) WriteText(w io.Writer) error {
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	var parts []string
	for _, k := range kinds {
		if !r.has(k.name) {
			continue
		}
		ids := r.IDs(k.name)
		p := fmt.Sprintf("%d %s", len(ids), k.label)
		switch {
		case k.ids:
			p += fmt.Sprintf(" %v", ids)
		case k.name == Chunk:
			p += fmt.Sprintf(" (%d bytes)", r.Bytes(Chunk))
		}
		parts = append(parts, p)
	}
	var in []string
	if r.has(Chunk) {
		in = append(in, fmt.Sprintf("%d chunks in use", r.LiveChunks))
	}
	if r.has(Volume) || len(r.Running) > 0 {
		in = append(in, fmt.Sprintf("%d belong to running bakes", len(r.Running)))
	}
	line := verb + " " + strings.Join(parts, ", ")
	if len(in) > 0 {
		line += "; " + strings.Join(in, ", ")
	}
	if _, err := fmt.Fprintln(w, line); err != nil {
		return err
	}
	for _, it := range r.Skipped {
		if _, err := fmt.Fprintf(w, "skipped %s %s: %s\n", strings.ReplaceAll(it.Kind, "_", " "), it.ID, it.Reason); err != nil {
			return err
		}
	}
	return nil
}
