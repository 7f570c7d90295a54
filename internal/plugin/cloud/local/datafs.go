package local

// The store filesystem: data/ (volumes and the snapshot store) on a
// reflink filesystem of its own, made in a sparse loop file (data.xfs or
// data.btrfs, recorded in data.yml) and mounted on data/. By default
// (store_fs: auto) the first command on a new state directory without
// reflinks sets it up (PrepareDataFS); aminate init --store-fs chooses by
// hand (InitDataFS). Volumes are then clones of their snapshot, made in
// milliseconds, and snapshots read only the blocks a bake changed.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/sys/mount"
)

// dataFS records how data/ is kept (STATE/data.yml): on a filesystem of
// its own in a loop file (FS xfs or btrfs, Image the file), or, with FS
// none, in the state directory as it is, by choice (aminate init
// --store-fs none), so it is never set up automatically.
type dataFS struct {
	FS    string `yaml:"fs"`
	Image string `yaml:"image,omitempty"`
	// Auto is set when a command made it by itself (store_fs: auto).
	Auto bool `yaml:"auto,omitempty"`
}

func (d *dataFS) ownFS() bool { return d != nil && d.FS != "none" }

func dataConfig(stateDir string) string { return filepath.Join(stateDir, "data.yml") }

func dataLock(stateDir string) string { return filepath.Join(stateDir, "lock", "datafs.lock") }

func readDataFS(stateDir string) (*dataFS, error) {
	b, err := os.ReadFile(dataConfig(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store filesystem: %w", err)
	}
	var d dataFS
	if err := yaml.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", dataConfig(stateDir), err)
	}
	return &d, nil
}

func writeDataFS(stateDir string, d *dataFS) error {
	b, err := yaml.Marshal(d)
	if err != nil {
		return err
	}
	tmp := dataConfig(stateDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	if err := os.Rename(tmp, dataConfig(stateDir)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store filesystem: %w", err)
	}
	return nil
}

func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// lockData takes the state directory's store-filesystem lock.
func lockData(ctx context.Context, stateDir string) (*flock.Lock, error) {
	if err := os.MkdirAll(filepath.Join(stateDir, "lock"), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	l, err := flock.Exclusive(ctx, dataLock(stateDir))
	if err != nil {
		return nil, fmt.Errorf("store filesystem lock: %w", err)
	}
	return l, nil
}

// InitDataFS puts data/ (volumes and the snapshot store) on a filesystem
// of its own, made in a sparse loop file of size bytes: fstype xfs (with
// reflink) or btrfs, for clone-speed volumes and incremental snapshots on
// hosts whose state directory is on ext4. With fstype none it records that
// data/ stays in the state directory (store_fs: auto then leaves it). It
// refuses when data/ already holds snapshots or volumes.
func InitDataFS(ctx context.Context, stateDir, fstype string, size int64, log *slog.Logger) error {
	if fstype != "xfs" && fstype != "btrfs" && fstype != "none" {
		return fmt.Errorf("--store-fs %q: xfs, btrfs or none", fstype)
	}
	lock, err := lockData(ctx, stateDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	d, err := readDataFS(stateDir)
	if err != nil {
		return err
	}
	if d.ownFS() {
		if d.FS != fstype {
			return fmt.Errorf("data/ is already on %s (%s)", d.FS, d.Image)
		}
		return mountDataFS(ctx, stateDir, d)
	}
	if fstype == "none" {
		return writeDataFS(stateDir, &dataFS{FS: "none"})
	}
	if why := storeContent(stateDir); why != "" {
		return fmt.Errorf("%s; init the store filesystem on an empty state directory", why)
	}
	return makeDataFS(ctx, stateDir, &dataFS{FS: fstype, Image: filepath.Join(stateDir, "data."+fstype)}, size, log)
}

// makeDataFS makes d's filesystem in a new sparse file, records it and
// mounts it on data/; on failure it leaves the state directory as it was
// (data/ then holds no store: the caller checked).
func makeDataFS(ctx context.Context, stateDir string, d *dataFS, size int64, log *slog.Logger) (err error) {
	f, err := os.OpenFile(d.Image, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(dataConfig(stateDir))
			os.Remove(d.Image)
		}
	}()
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if d.FS == "xfs" {
			err = logging.Host(ctx, log, "mkfs.xfs", "-q", "-m", "reflink=1", "-L", "aminator", d.Image)
		} else {
			err = logging.Host(ctx, log, "mkfs.btrfs", "-q", "-L", "aminator", d.Image)
		}
	}
	if err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	data := filepath.Join(stateDir, "data")
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	if err := writeDataFS(stateDir, d); err != nil {
		return err
	}
	return mountDataFS(ctx, stateDir, d)
}

// storeContent says why data/ must not be replaced by a new filesystem
// ("" when it holds no store): snapshots, volumes or chunks in it, or a
// filesystem mounted on it already.
func storeContent(stateDir string) string {
	data := filepath.Join(stateDir, "data")
	if isMountPoint(data) {
		return data + " is a mount point already"
	}
	for _, sub := range []string{"store/snapshots", "volumes", "store/cache"} {
		if ents, _ := os.ReadDir(filepath.Join(data, sub)); len(ents) > 0 {
			return fmt.Sprintf("%s already holds %d entries", filepath.Join(data, sub), len(ents))
		}
	}
	found := errors.New("found")
	err := filepath.WalkDir(filepath.Join(data, "store", "chunks"), func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			return found
		}
		return nil
	})
	if err == found {
		return filepath.Join(data, "store", "chunks") + " holds chunks"
	}
	return ""
}

func mountDataFS(ctx context.Context, stateDir string, d *dataFS) error {
	data := filepath.Join(stateDir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("store filesystem: %w", err)
	}
	if isMountPoint(data) {
		return nil
	}
	// Unmounted here but still alive in another mount namespace (a process
	// that made one while it was mounted, such as a running bake): mount
	// that same device again. A second loop device on the file would be a
	// second instance of the filesystem (xfs refuses its duplicate UUID).
	if dev := loopOf(d.Image); dev != "" {
		if err := mount.Mount(dev, data, d.FS, 0, ""); err == nil {
			return nil
		}
		// It went away meanwhile: attach the file afresh.
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

// loopOf names the loop device the file is attached to ("" if none).
func loopOf(file string) string {
	ls, _ := loop.Attached(file)
	for _, l := range ls {
		if dev, backing, ok := strings.Cut(l, " -> "); ok && backing == file {
			return dev
		}
	}
	return ""
}

// EnsureDataFS mounts data/'s filesystem if aminate init made one and it
// is not mounted (after a reboot). Call it in the host's mount namespace.
func EnsureDataFS(ctx context.Context, stateDir string) error {
	d, err := readDataFS(stateDir)
	if err != nil || !d.ownFS() {
		return err
	}
	lock, err := lockData(ctx, stateDir)
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
	if err != nil || !d.ownFS() {
		return err
	}
	data := filepath.Join(stateDir, "data")
	if !isMountPoint(data) {
		return nil
	}
	return mount.Unmount(ctx, data, nil)
}

func checkDataFS(stateDir string) error {
	d, err := readDataFS(stateDir)
	if err != nil || !d.ownFS() {
		return err
	}
	if !isMountPoint(filepath.Join(stateDir, "data")) {
		return fmt.Errorf("the store filesystem %s is not mounted on %s/data (any aminate command mounts it; or run aminate init)", d.Image, strings.TrimSuffix(stateDir, "/"))
	}
	return nil
}

// maxAutoSize bounds the loop file of an automatic store (aminate init's
// default size); minAutoSize is the least worth making.
const (
	maxAutoSize = 256 << 30
	minAutoSize = 4 << 30
)

// autoSize is the loop file's size for an automatic store: the space free
// under the state directory now, in whole GiB, at most maxAutoSize. The
// file is sparse, so it takes only what is stored; a filesystem larger
// than the free space would fail writes once the host is full.
func autoSize(stateDir string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(stateDir, &st) != nil {
		return 0
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	return min(free>>30<<30, maxAutoSize)
}

// PrepareDataFS makes data/ ready before a command opens the local cloud;
// call it as root in the host's mount namespace. It mounts a store
// filesystem made before (after a reboot, or an unmount), and with mode
// auto, xfs or btrfs (store_fs) it sets one up when the state directory is
// new: no store filesystem recorded, no store content, no reflinks where
// data/ lives, and the kernel and mkfs for the filesystem present. It logs
// one line when it does, and one INFO line, once per process, when it
// cannot and the store stays on the slow path: why, and what would fix it
// (the package to install). An automatic set-up that fails is logged and
// the command goes on without it; one asked for by name (xfs, btrfs)
// fails it.
// Concurrent commands take turns on a lock, so one of them makes it.
func PrepareDataFS(ctx context.Context, stateDir, mode string, log *slog.Logger) error {
	d, err := readDataFS(stateDir)
	if err != nil {
		return err
	}
	if d != nil || mode == "none" || mode == "" {
		return EnsureDataFS(ctx, stateDir)
	}
	lock, err := lockData(ctx, stateDir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if d, err = readDataFS(stateDir); err != nil || d != nil {
		if d.ownFS() {
			err = mountDataFS(ctx, stateDir, d)
		}
		return err
	}
	fstype, no := autoChoice(stateDir, mode)
	switch {
	case fstype != "":
	case no == nil: // reflinks where data/ is already
		return nil
	case mode != "auto":
		return fmt.Errorf("store_fs %s: %s; %s", mode, no.why, no.fix)
	default:
		no.say(log, stateDir)
		return nil
	}
	size := autoSize(stateDir)
	nd := &dataFS{FS: fstype, Image: filepath.Join(stateDir, "data."+fstype), Auto: true}
	if size < minAutoSize {
		err = fmt.Errorf("only %d GiB free under %s", size>>30, stateDir)
	} else {
		err = makeDataFS(ctx, stateDir, nd, size, log)
	}
	if err != nil {
		if mode != "auto" {
			return fmt.Errorf("store_fs %s: %w", mode, err)
		}
		log.Warn("could not set up the reflink store; volumes are full copies (store_fs: none in aminator.yml or AMINATOR_STORE_FS=none stops trying)", "err", err)
		return nil
	}
	log.Info("reflink store set up: new volumes are clones, snapshots read only what changed",
		"fs", fstype, "file", nd.Image, "sparse_gib", size>>30, "mounted_on", filepath.Join(stateDir, "data"),
		"turn_off", "store_fs: none in aminator.yml, AMINATOR_STORE_FS=none or --store-fs none")
	return nil
}
