package snapstore

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/aminator-go/aminator/internal/ui/gcreport"
)

// gc plans and executes the store's gc.
func gc(t *testing.T, c *Chunks) *gcreport.Report {
	t.Helper()
	p, err := c.PlanGC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func listChunks(t *testing.T, c *Chunks) []string {
	t.Helper()
	var out []string
	ps, _ := filepath.Glob(filepath.Join(c.Dir(), "chunks", "*", "*"))
	for _, p := range ps {
		out = append(out, filepath.Base(p))
	}
	sort.Strings(out)
	return out
}

func ids(r *gcreport.Report, kind string) []string {
	out := r.IDs(kind)
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The plan lists exactly the unused chunks, temporary files and clones
// without a snapshot; not executing it (a dry run) removes nothing, and
// executing it removes exactly its items.
func TestGCPlanThenExecute(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newStore(t, filepath.Join(dir, "store"))
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	volume(t, a, 8, []int{0, 1}, nil)
	volume(t, b, 8, []int{2, 3}, nil)
	for id, src := range map[string]string{"snap-a": a, "snap-b": b} {
		if _, err := c.Put(ctx, id, "", src); err != nil {
			t.Fatal(err)
		}
	}
	keep, _ := c.LoadManifest("snap-a")
	all := listChunks(t, c)
	c.Delete(ctx, "snap-b")
	os.WriteFile(filepath.Join(c.Dir(), "tmp", "chunk-left"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(c.Dir(), "cache", "snap-gone.img"), nil, 0o600)

	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, h := range keep.Chunks {
		live[h] = h != ""
	}
	var unused []string
	for _, h := range all {
		if !live[h] {
			unused = append(unused, h)
		}
	}
	dry := p.Planned()
	if got := ids(dry, gcreport.Chunk); len(unused) == 0 || !equal(got, unused) {
		t.Errorf("planned chunks %v, want the unused %v", got, unused)
	}
	if !equal(ids(dry, gcreport.Temporary), []string{"chunk-left"}) || !equal(ids(dry, gcreport.Clone), []string{"snap-gone.img"}) {
		t.Errorf("planned %+v", dry.Removed)
	}
	if !dry.DryRun || !equal(listChunks(t, c), all) {
		t.Error("planning removed something")
	}
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Removed) != len(p.Items) || len(r.Skipped) != 0 {
		t.Errorf("executed %+v, skipped %+v; planned %+v", r.Removed, r.Skipped, p.Items)
	}
	if got := listChunks(t, c); len(got) != len(all)-len(unused) {
		t.Errorf("chunks left %v", got)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), "tmp", "chunk-left")); !os.IsNotExist(err) {
		t.Error("temporary file left")
	}
	if err := c.Restore(ctx, "snap-a", filepath.Join(dir, "out")); err != nil {
		t.Errorf("gc broke a live snapshot: %v", err)
	}
}

// A chunk a snapshot stored between plan and execution uses is skipped
// and reported, as is an item gone meanwhile.
func TestGCExecuteSkipsWhatChanged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newStore(t, filepath.Join(dir, "store"))
	a := filepath.Join(dir, "a")
	volume(t, a, 8, []int{0, 1}, nil)
	if _, err := c.Put(ctx, "snap-a", "", a); err != nil {
		t.Fatal(err)
	}
	c.Delete(ctx, "snap-a")
	os.WriteFile(filepath.Join(c.Dir(), "tmp", "chunk-left"), []byte("x"), 0o600)
	p, err := c.PlanGC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	planned := len(p.Planned().IDs(gcreport.Chunk))
	if planned == 0 {
		t.Fatal("nothing planned")
	}
	// Meanwhile the same data is stored again, and the leftover goes.
	if _, err := c.Put(ctx, "snap-again", "", a); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(c.Dir(), "tmp", "chunk-left"))
	r, err := p.Execute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Removed) != 0 || len(r.Skipped) != planned+1 {
		t.Errorf("removed %+v, skipped %+v", r.Removed, r.Skipped)
	}
	for _, it := range r.Skipped {
		if it.Reason == "" {
			t.Errorf("skipped %s %s without a reason", it.Kind, it.ID)
		}
	}
	if err := c.Restore(ctx, "snap-again", filepath.Join(dir, "out")); err != nil {
		t.Errorf("gc removed a chunk a new snapshot uses: %v", err)
	}
}

// A plan made as if snapshots were deleted frees their chunks, and not
// their clones (deleting them removes those).
func TestGCPlanDeleting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newStore(t, filepath.Join(dir, "store"))
	a := filepath.Join(dir, "a")
	volume(t, a, 8, []int{0, 1}, nil)
	if _, err := c.Put(ctx, "snap-a", "", a); err != nil {
		t.Fatal(err)
	}
	p, err := c.PlanGC(ctx, "snap-a")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Planned().IDs(gcreport.Chunk)); n != len(listChunks(t, c)) || n == 0 {
		t.Errorf("planned %d of %d chunks", n, len(listChunks(t, c)))
	}
	if n := len(p.Planned().IDs(gcreport.Clone)); n != 0 {
		t.Errorf("planned %d clones", n)
	}
	c.Delete(ctx, "snap-a")
	if r, err := p.Execute(ctx); err != nil || len(r.Skipped) != 0 || len(listChunks(t, c)) != 0 {
		t.Errorf("execute: %+v %v; chunks left %v", r, err, listChunks(t, c))
	}
}
