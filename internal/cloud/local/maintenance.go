package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/flock"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/loop"
	"github.com/aminator-go/aminator/internal/mount"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/snapstore"
)

// GCReport says what gc removed (or, with a dry run, would remove).
type GCReport struct {
	OrphanedVolumes  []string          `json:"orphaned_volumes"`
	PendingSnapshots []string          `json:"pending_snapshots"`
	Store            snapstore.GCStats `json:"store"`
	// Scratch are leftovers of killed jobs, removed when no job runs.
	Scratch []string `json:"scratch"`
	// Stale are the job locks and mount points killed jobs left.
	Stale []string `json:"stale"`
}

// GC removes the volumes of bakes that are gone, snapshots whose maker died
// before completing them, and every chunk no snapshot uses.
func (c *Cloud) GC(ctx context.Context, dryRun bool) (*GCReport, error) {
	r := &GCReport{OrphanedVolumes: []string{}, PendingSnapshots: []string{}}
	vs, err := c.Volumes(ctx)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, v := range vs {
		if !v.Orphaned {
			continue
		}
		r.OrphanedVolumes = append(r.OrphanedVolumes, v.ID)
		if !dryRun {
			if err := c.DeleteVolume(ctx, v.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ss, err := c.Snapshots(ctx)
	if err != nil {
		return r, err
	}
	for _, s := range ss {
		if s.State != "pending" {
			continue
		}
		// Take the maker's lock, so the snapshot cannot complete while it is
		// removed, and delete it only if it is still pending.
		lock, err := flock.TryExclusive(c.ownerLock(s.ID))
		if err != nil {
			continue // its maker is alive
		}
		if dryRun {
			lock.Unlock()
			r.PendingSnapshots = append(r.PendingSnapshots, s.ID)
			continue
		}
		pending, err := c.deleteRow(ctx, "snapshots", s.ID, "state='pending'")
		if err != nil {
			errs = append(errs, fmt.Errorf("gc: %w", err))
		} else if pending {
			if err := c.store.Delete(ctx, s.ID); err != nil {
				errs = append(errs, fmt.Errorf("gc: %w", err))
			}
			r.PendingSnapshots = append(r.PendingSnapshots, s.ID)
		}
		lock.Unlock()
		os.Remove(lock.Path())
	}
	r.Store, err = c.store.GC(ctx, dryRun)
	if err != nil {
		errs = append(errs, err)
	}
	if !c.jobsRunning() {
		r.Scratch = c.scratch()
		if !dryRun {
			for _, p := range r.Scratch {
				os.RemoveAll(p)
			}
		}
	}
	r.Stale = c.stale(ctx, dryRun)
	return r, errors.Join(errs...)
}

// jobLocks are the locks a job (bake, foundation, boot test) holds for its
// lifetime (the CLI takes LOCKDIR/<job id>.lock).
var jobLocks = []string{"bake-*.lock", "foundation-*.lock", "test-*.lock"}

// stale removes (unless dryRun) and lists what a job killed with SIGKILL
// leaves outside tmp/: its job lock, taken here before it is removed (and
// only once older than a few seconds, so a job that has just created its
// lock file takes it), and the empty mount point of a volume that is gone.
// A mount point is removed only if empty and not mounted (rmdir).
func (c *Cloud) stale(ctx context.Context, dryRun bool) []string {
	out := []string{}
	for _, pat := range jobLocks {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if st, err := os.Stat(l); err != nil || time.Since(st.ModTime()) < 10*time.Second {
				continue
			}
			lock, err := flock.TryExclusive(l)
			if err != nil {
				continue // its job runs
			}
			if dryRun || os.Remove(l) == nil {
				out = append(out, l)
			}
			lock.Unlock()
		}
	}
	mnt := filepath.Join(c.dir, "mnt")
	ents, _ := os.ReadDir(mnt)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := c.Volume(ctx, e.Name()); !errors.Is(err, plugin.ErrNotFound) {
			continue // its volume is still there (a running or preserved bake's)
		}
		if p := filepath.Join(mnt, e.Name()); dryRun || os.Remove(p) == nil {
			out = append(out, p)
		}
	}
	return out
}

// jobsRunning reports whether any bake, foundation or boot test holds its
// job lock (the CLI takes LOCKDIR/<job id>.lock for a job's lifetime).
func (c *Cloud) jobsRunning() bool {
	for _, pat := range jobLocks {
		locks, _ := filepath.Glob(filepath.Join(c.lockDir, pat))
		for _, l := range locks {
			if flock.Held(l) {
				return true
			}
		}
	}
	return false
}

// scratch lists what killed jobs leave: scratch files (not those a live
// process holds a flock on, as a bake's parent does its refill list),
// half-restored volume files, foundation trees on tmpfs.
func (c *Cloud) scratch() []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(c.dir, "tmp"))
	for _, e := range ents {
		p := filepath.Join(c.dir, "tmp", e.Name())
		if e.Type().IsRegular() && flock.Held(p) {
			continue
		}
		out = append(out, p)
	}

	tmps, _ := filepath.Glob(filepath.Join(c.dir, "data", "volumes", ".*.tmp-*"))
	out = append(out, tmps...)
	// Shared by every state directory on the host: only old ones.
	trees, _ := filepath.Glob("/dev/shm/aminator-foundation-*")
	for _, t := range trees {
		if st, err := os.Stat(t); err == nil && time.Since(st.ModTime()) > 6*time.Hour {
			out = append(out, t)
		}
	}
	return out
}

// FsckReport is the store's check plus what it means for the registry.
type FsckReport struct {
	*snapstore.FsckReport
	// MissingData are completed snapshots the store has no manifest for.
	MissingData []string `json:"missing_data"`
	// BrokenImages maps an image to its broken snapshots.
	BrokenImages map[string][]string `json:"broken_images"`
}

// OK reports whether nothing is wrong.
func (r *FsckReport) OK() bool {
	return len(r.Bad) == 0 && len(r.Broken) == 0 && len(r.MissingData) == 0
}

// Fsck verifies every chunk and names the snapshots and images a bad or
// missing chunk breaks.
func (c *Cloud) Fsck(ctx context.Context) (*FsckReport, error) {
	sr, err := c.store.Fsck(ctx)
	if err != nil {
		return nil, err
	}
	r := &FsckReport{FsckReport: sr, MissingData: []string{}, BrokenImages: map[string][]string{}}
	ss, err := c.Snapshots(ctx)
	if err != nil {
		return r, err
	}
	for _, s := range ss {
		if s.State != "completed" {
			continue
		}
		broken := len(sr.Broken[s.ID]) > 0
		if _, err := c.store.LoadManifest(s.ID); err != nil {
			r.MissingData = append(r.MissingData, s.ID)
			broken = true
		}
		if !broken {
			continue
		}
		users, err := c.snapshotUsers(ctx, s.ID)
		if err != nil {
			return r, fmt.Errorf("fsck: %w", err)
		}
		for _, im := range users {
			r.BrokenImages[im] = append(r.BrokenImages[im], s.ID)
		}
	}
	return r, nil
}

// dataFS records a dedicated filesystem for data/ (aminate init).
type dataFS struct {
	FS    string `yaml:"fs"`
	Image string `yaml:"image"`
}

func dataConfig(stateDir string) string { return filepath.Join(stateDir, "data.yml") }

func readDataFS(stateDir string) (*dataFS, error) {
	b, err := os.ReadFile(dataConfig(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d dataFS
	if err := yaml.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", dataConfig(stateDir), err)
	}
	return &d, nil
}

func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// InitDataFS puts data/ (volumes and the snapshot store) on a filesystem
// of its own, made in a loop file: fstype xfs (with reflink) or btrfs, for
// clone-speed volumes and incremental snapshots on hosts whose state
// directory is on ext4. It refuses when data/ already holds snapshots.
func InitDataFS(ctx context.Context, stateDir, fstype string, size int64, log *slog.Logger) error {
	if fstype != "xfs" && fstype != "btrfs" {
		return fmt.Errorf("--store-fs %q: xfs or btrfs", fstype)
	}
	lock, err := flock.Exclusive(ctx, filepath.Join(stateDir, "lock", "datafs.lock"))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if d, err := readDataFS(stateDir); err != nil {
		return err
	} else if d != nil {
		if d.FS != fstype {
			return fmt.Errorf("data/ is already on %s (%s)", d.FS, d.Image)
		}
		return mountDataFS(ctx, stateDir, d)
	}
	data := filepath.Join(stateDir, "data")
	for _, sub := range []string{"store/snapshots", "volumes"} {
		if ents, _ := os.ReadDir(filepath.Join(data, sub)); len(ents) > 0 {
			return fmt.Errorf("%s already holds %d entries; init the store filesystem on an empty state directory", filepath.Join(data, sub), len(ents))
		}
	}
	img := filepath.Join(stateDir, "data."+fstype)
	f, err := os.OpenFile(img, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	err = f.Truncate(size)
	f.Close()
	if err == nil {
		if fstype == "xfs" {
			err = logging.Host(ctx, log, "mkfs.xfs", "-q", "-m", "reflink=1", "-L", "aminator", img)
		} else {
			err = logging.Host(ctx, log, "mkfs.btrfs", "-q", "-L", "aminator", img)
		}
	}
	if err != nil {
		os.Remove(img)
		return fmt.Errorf("store filesystem: %w", err)
	}
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	d := &dataFS{FS: fstype, Image: img}
	b, _ := yaml.Marshal(d)
	if err := os.WriteFile(dataConfig(stateDir), b, 0o600); err != nil {
		return err
	}
	return mountDataFS(ctx, stateDir, d)
}

func mountDataFS(ctx context.Context, stateDir string, d *dataFS) error {
	data := filepath.Join(stateDir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if isMountPoint(data) {
		return nil
	}
	dev, err := loop.Attach(ctx, d.Image, loop.Options{LockPath: filepath.Join(stateDir, "lock", "loop.lock")})
	if err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	if err := mount.Mount(dev.Path, data, d.FS, 0, ""); err != nil {
		dev.Detach()
		return fmt.Errorf("store filesystem: %w", err)
	}
	return dev.Release() // the mount keeps it; unmounting frees it
}

// EnsureDataFS mounts data/'s filesystem if aminate init made one and it
// is not mounted (after a reboot). Call it in the host's mount namespace.
func EnsureDataFS(ctx context.Context, stateDir string) error {
	d, err := readDataFS(stateDir)
	if err != nil || d == nil {
		return err
	}
	lock, err := flock.Exclusive(ctx, filepath.Join(stateDir, "lock", "datafs.lock"))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return mountDataFS(ctx, stateDir, d)
}

// UnmountDataFS unmounts data/'s own filesystem (it is mounted again by the
// next command that needs it).
func UnmountDataFS(ctx context.Context, stateDir string) error {
	d, err := readDataFS(stateDir)
	if err != nil || d == nil {
		return err
	}
	data := filepath.Join(stateDir, "data")
	if !isMountPoint(data) {
		return nil
	}
	if err := mount.Unmount(ctx, data, nil); err != nil {
		return err
	}
	return nil
}

func checkDataFS(stateDir string) error {
	d, err := readDataFS(stateDir)
	if err != nil || d == nil {
		return err
	}
	if !isMountPoint(filepath.Join(stateDir, "data")) {
		return fmt.Errorf("the store filesystem %s is not mounted on %s/data (any aminate command mounts it; or run aminate init)", d.Image, strings.TrimSuffix(stateDir, "/"))
	}
	return nil
}
