package cloudtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
	"github.com/aminator-go/aminator/internal/testutil"
)

// The capability names a Fixture lists in Capabilities.
const (
	Pool      = "Pool"
	Lister    = "Lister"
	Manifests = "Manifests"
	GCPlanner = "GCPlanner"
	Importer  = "Importer"
	DiskFiles = "DiskFiles"
	Checker   = "Checker"
	// DiskDigests is plugin.DiskDigests.
	DiskDigests = "DiskDigests"
)

// capabilities are the optional capabilities the suite knows, by name.
func capabilities(c plugin.Cloud) map[string]bool {
	_, pool := c.(plugin.Pool)
	_, lister := c.(plugin.Lister)
	_, manifests := c.(plugin.Manifests)
	_, gc := c.(plugin.GCPlanner)
	_, importer := c.(plugin.Importer)
	_, disks := c.(plugin.DiskFiles)
	_, checker := c.(plugin.Checker)
	_, digests := c.(plugin.DiskDigests)
	return map[string]bool{Pool: pool, Lister: lister, Manifests: manifests, GCPlanner: gc, Importer: importer,
		DiskFiles: disks, Checker: checker, DiskDigests: digests}
}

// capabilitySuites are the sub-suites of the optional capabilities, each
// skipped on a cloud that lacks its capability.
func (s *suite) capabilitySuites() []struct {
	name string
	fn   func(*testing.T)
} {
	return []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Capabilities", s.capabilities},
		{Pool, s.need(Pool, s.pool)},
		{Lister, s.need(Lister, s.lister)},
		{Manifests, s.need(Manifests, s.manifests)},
		{GCPlanner, s.need(GCPlanner, s.gc)},
		{Importer, s.need(Importer, s.importer)},
		{DiskFiles, s.need(DiskFiles, s.diskFiles)},
		{Checker, s.need(Checker, s.checker)},
		{DiskDigests, s.need(DiskDigests, s.diskDigests)},
	}
}

// need runs fn when the cloud has the capability, else skips.
func (s *suite) need(name string, fn func(*testing.T)) func(*testing.T) {
	return func(t *testing.T) {
		if !capabilities(s.c)[name] {
			t.Skipf("the cloud has no %s", name)
		}
		fn(t)
	}
}

// capabilities: the cloud has exactly the capabilities its fixture lists.
func (s *suite) capabilities(t *testing.T) {
	var got []string
	for name, ok := range capabilities(s.c) {
		if ok {
			got = append(got, name)
		}
	}
	want := append([]string{}, s.f.Capabilities...)
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("capabilities %v, want %v", got, want)
	}
	if _, err := plugin.Has[plugin.Pool](s.c, "this", "volume pool"); capabilities(s.c)[Pool] == (err != nil) {
		t.Errorf("plugin.Has of the pool: %v", err)
	}
	if _, err := plugin.Has[interface{ NoSuchCapability() }](s.c, "this", "thing"); !errors.Is(err, plugin.ErrNoCapability) {
		t.Errorf("plugin.Has of a capability no cloud has: %v, want an error wrapping ErrNoCapability", err)
	}
}

// pool: a fill of a missing snapshot wraps ErrNotFound; a fill makes the
// target's volumes once, a bake's CreateVolume takes one and says so, a
// refill makes it up, and a drain deletes the ready ones and forgets the
// target.
func (s *suite) pool(t *testing.T) {
	ctx := context.Background()
	p := s.c.(plugin.Pool)
	snap := s.f.BaseSnapshot
	if _, err := p.FillPool(ctx, plugin.PoolFill{Snapshot: ids.New("snap"), Target: 1}); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("FillPool of a missing snapshot: %v, want an error wrapping plugin.ErrNotFound", err)
	}
	t.Cleanup(func() { p.DrainPool(context.Background(), snap) })
	if made, err := p.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Base: "ami-cloudtest", Target: 1}); err != nil || made != 1 {
		t.Fatalf("FillPool: made %d, %v; want 1", made, err)
	}
	s.poolIs(t, snap, 1, 1)
	if made, err := p.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Target: 1}); err != nil || made != 0 {
		t.Errorf("FillPool again: made %d, %v; want 0", made, err)
	}
	var taken []string
	p.OnPoolTake(func(s string) { taken = append(taken, s) })
	defer p.OnPoolTake(nil)
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: snap, Tags: plugin.Tags{"purpose": "amination"}})
	if !reflect.DeepEqual(taken, []string{snap}) || v.Tags["purpose"] != "amination" {
		t.Errorf("CreateVolume of a pooled snapshot: took %v, tags %v; want the pool's volume, retagged", taken, v.Tags)
	}
	s.poolIs(t, snap, 1, 0)
	if made, err := p.FillPool(ctx, plugin.PoolFill{Snapshot: snap, Target: -1}); err != nil || made != 1 {
		t.Errorf("refill: made %d, %v; want 1", made, err)
	}
	if n, err := p.DrainPool(ctx, snap); err != nil || n != 1 {
		t.Errorf("DrainPool: %d, %v; want 1", n, err)
	}
	if ps, err := p.PoolStatus(ctx); err != nil || len(ps) != 0 {
		t.Errorf("PoolStatus after a drain: %+v, %v; want none", ps, err)
	}
	if n, err := p.DrainPool(ctx, snap); err != nil || n != 0 {
		t.Errorf("DrainPool again: %d, %v; want 0", n, err)
	}
}

func (s *suite) poolIs(t *testing.T, snap string, target, ready int) {
	t.Helper()
	ps, err := s.c.(plugin.Pool).PoolStatus(context.Background())
	if err != nil || len(ps) != 1 || ps[0].SnapshotID != snap || ps[0].Target != target || ps[0].Ready != ready || ps[0].Images == nil {
		t.Errorf("PoolStatus: %+v, %v; want %s with target %d, %d ready", ps, err, snap, target, ready)
	}
}

// lister: what aminator made (a bake's volume, a snapshot tagged with its
// bake) is listed with its tags, newest first.
func (s *suite) lister(t *testing.T) {
	ctx := context.Background()
	l := s.c.(plugin.Lister)
	bake := unique("bake")
	v := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot, Tags: plugin.Tags{"purpose": "amination", "bake": bake}})
	sn := s.newSnapshot(t, plugin.Tags{"bake": bake})
	vs, err := l.ListVolumes(ctx)
	if err != nil {
		t.Fatalf("ListVolumes: %v", err)
	}
	found := false
	for i, x := range vs {
		found = found || (x.ID == v.ID && x.Tags["bake"] == bake)
		if i > 0 && x.CreatedAt.After(vs[i-1].CreatedAt) {
			t.Errorf("ListVolumes: %s is newer than %s before it", x.ID, vs[i-1].ID)
		}
	}
	if !found {
		t.Errorf("ListVolumes does not list %s with its tags", v.ID)
	}
	ss, err := l.ListSnapshots(ctx)
	if err != nil {
		t.Fatalf("ListSnapshots: %v", err)
	}
	found = false
	for i, x := range ss {
		found = found || (x.ID == sn.ID && x.Tags["bake"] == bake)
		if i > 0 && x.CreatedAt.After(ss[i-1].CreatedAt) {
			t.Errorf("ListSnapshots: %s is newer than %s before it", x.ID, ss[i-1].ID)
		}
	}
	if !found {
		t.Errorf("ListSnapshots does not list %s with its tags", sn.ID)
	}
}

// manifests: an image registered with packages has them, sorted; a
// missing image wraps ErrNotFound.
func (s *suite) manifests(t *testing.T) {
	ctx := context.Background()
	m := s.c.(plugin.Manifests)
	if _, err := m.Manifest(ctx, ids.New("ami")); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("Manifest of a missing image: %v, want an error wrapping plugin.ErrNotFound", err)
	}
	sn := s.newSnapshot(t, nil)
	r := imageRequest(unique("cloudtest-manifest"), sn.ID, nil)
	r.Packages = []plugin.Package{{Name: "zlib", Version: "1.3", Arch: "amd64"}, {Name: "bash", Version: "5.2", Arch: "amd64"}}
	im, err := s.c.RegisterImage(ctx, r)
	if err != nil {
		t.Fatalf("RegisterImage: %v", err)
	}
	gone(t, "deregister image "+im.ID, func(ctx context.Context) error { return s.c.DeregisterImage(ctx, im.ID) })
	got, err := m.Manifest(ctx, im.ID)
	want := []plugin.Package{r.Packages[1], r.Packages[0]}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Manifest: %+v, %v; want %+v", got, err, want)
	}
	bare := s.newImage(t, unique("cloudtest-bare"), s.newSnapshot(t, nil).ID, nil)
	if got, err := m.Manifest(ctx, bare.ID); err != nil || len(got) != 0 {
		t.Errorf("Manifest of an image registered without packages: %+v, %v; want none", got, err)
	}
}

// gc: a detached volume a bake that is gone left is planned (a dry run
// removes nothing) and removed; a running bake's is left alone.
func (s *suite) gc(t *testing.T) {
	ctx := context.Background()
	h, err := s.c.Host(ctx)
	if err != nil {
		t.Fatalf("Host: %v", err)
	}
	running, dead := unique("bake"), unique("bake")
	if s.f.RunningBake != nil {
		s.f.RunningBake(t, running)
	}
	tags := func(bake string) plugin.Tags {
		return plugin.Tags{"purpose": "amination", "bake": bake, "host": h.InstanceID}
	}
	live := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot, Tags: tags(running)})
	left := s.newVolume(t, plugin.VolumeRequest{SnapshotID: s.f.BaseSnapshot, Tags: tags(dead)})
	if s.f.Abandon != nil {
		s.f.Abandon(t, left.ID)
	}
	p, err := s.c.(plugin.GCPlanner).PlanGarbage(ctx)
	if p == nil {
		t.Fatalf("PlanGarbage: %v", err)
	}
	ids := func(items []string) map[string]bool {
		out := map[string]bool{}
		for _, id := range items {
			out[id] = true
		}
		return out
	}
	dry := p.Planned()
	var planned []string
	for _, it := range dry.Removed {
		planned = append(planned, it.ID)
	}
	if got := ids(planned); !got[left.ID] || got[live.ID] || !dry.DryRun {
		t.Errorf("planned %v (dry run %v); want %s and not %s", planned, dry.DryRun, left.ID, live.ID)
	}
	if _, err := s.c.Volume(ctx, left.ID); err != nil {
		t.Errorf("planning removed %s: %v", left.ID, err)
	}
	r, err := p.Execute(ctx)
	if r == nil {
		t.Fatalf("Execute: %v", err)
	}
	if _, err := s.c.Volume(ctx, left.ID); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("after gc the dead bake's volume is there: %v", err)
	}
	if _, err := s.c.Volume(ctx, live.ID); err != nil {
		t.Errorf("gc removed the running bake's volume: %v", err)
	}
}

// importer: a raw disk file becomes an image of one root snapshot; a
// taken name wraps ErrExists.
func (s *suite) importer(t *testing.T) {
	ctx := context.Background()
	raw := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(raw, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	name := unique("cloudtest-import")
	imp := s.c.(plugin.Importer)
	im, err := imp.Import(ctx, raw, plugin.ImportRequest{Name: name, Architecture: "x86_64", VirtualizationType: "hvm", Tags: plugin.Tags{"k": "v"}})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	gone(t, "delete snapshot", func(ctx context.Context) error { return s.c.DeleteSnapshot(ctx, im.Root().SnapshotID) })
	gone(t, "deregister image "+im.ID, func(ctx context.Context) error { return s.c.DeregisterImage(ctx, im.ID) })
	if im.Name != name || im.Root() == nil || im.Tags["k"] != "v" {
		t.Errorf("imported %+v", im)
	}
	if again, err := imp.Import(ctx, raw, plugin.ImportRequest{Name: name}); !errors.Is(err, plugin.ErrExists) {
		if again != nil {
			s.c.DeregisterImage(ctx, again.ID)
		}
		t.Errorf("Import of a taken name: %v, want an error wrapping plugin.ErrExists", err)
	}
}

// diskFiles: a snapshot restores into a new file of its size; a missing
// one wraps ErrNotFound and leaves no file; scratch is a directory.
func (s *suite) diskFiles(t *testing.T) {
	ctx := context.Background()
	d := s.c.(plugin.DiskFiles)
	dir := t.TempDir()
	sn, err := s.c.Snapshot(ctx, s.f.BaseSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "root.img")
	if err := d.RestoreSnapshot(ctx, sn.ID, dst); err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() != sn.SizeBytes {
		t.Errorf("restored %v, %v; want %d bytes", st, err, sn.SizeBytes)
	}
	missing := filepath.Join(dir, "missing.img")
	if err := d.RestoreSnapshot(ctx, ids.New("snap"), missing); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("RestoreSnapshot of a missing snapshot: %v, want an error wrapping plugin.ErrNotFound", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s: %v", missing, err)
	}
	tmp, release, err := d.Scratch(ctx)
	if err != nil {
		t.Fatalf("Scratch: %v", err)
	}
	defer release()
	if st, err := os.Stat(tmp); err != nil || !st.IsDir() {
		t.Errorf("scratch %s: %v", tmp, err)
	}
}

// checker: a sound store checks OK.
func (s *suite) checker(t *testing.T) {
	r, err := s.c.(plugin.Checker).Fsck(context.Background(), false)
	if err != nil || !r.OK() {
		t.Errorf("Fsck of a sound store: %+v, %v", r, err)
	}
}

// diskDigests: both digests of the base snapshot are the same 64 lower-case
// hex digits, those diskdigest.OfFile gives of its restored disk (where
// the cloud has DiskFiles); a snapshot of an unchanged volume made from it
// has its digest; a missing snapshot wraps ErrNotFound; a cancelled read
// wraps context.Canceled.
func (s *suite) diskDigests(t *testing.T) {
	ctx := context.Background()
	d := s.c.(plugin.DiskDigests)
	want, err := d.DiskDigest(ctx, s.f.BaseSnapshot)
	if err != nil || !hexDigest.MatchString(want) {
		t.Fatalf("DiskDigest of the base: %q, %v; want 64 lower-case hex digits", want, err)
	}
	if got, err := d.ReadDiskDigest(ctx, s.f.BaseSnapshot); err != nil || got != want {
		t.Errorf("ReadDiskDigest of the base: %s, %v; want DiskDigest's %s", got, err, want)
	}
	if files, ok := s.c.(plugin.DiskFiles); ok {
		raw := filepath.Join(t.TempDir(), "root.img")
		if err := files.RestoreSnapshot(ctx, s.f.BaseSnapshot, raw); err != nil {
			t.Fatalf("RestoreSnapshot: %v", err)
		}
		if got := testutil.DiskDigest(t, raw, -1); got != want {
			t.Errorf("diskdigest.OfFile of the restored base: %s; the cloud says %s", got, want)
		}
	}
	if s.f.SnapshotsKeepNoData {
		t.Log("the double keeps no data for new snapshots: their digest is not checked")
	} else {
		sn := s.newSnapshot(t, nil)
		if got, err := d.DiskDigest(ctx, sn.ID); err != nil || got != want {
			t.Errorf("DiskDigest of a snapshot of an unchanged volume: %s, %v; want the base's %s", got, err, want)
		}
	}
	missing := ids.New("snap")
	_, err = d.DiskDigest(ctx, missing)
	isNotFound(t, "DiskDigest of a missing snapshot", err)
	_, err = d.ReadDiskDigest(ctx, missing)
	isNotFound(t, "ReadDiskDigest of a missing snapshot", err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.ReadDiskDigest(cancelled, s.f.BaseSnapshot); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadDiskDigest with a cancelled context: %v, want an error wrapping context.Canceled", err)
	}
}

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)
