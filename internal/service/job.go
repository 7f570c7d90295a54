package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aminator-go/aminator/internal/config"
	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/boottest"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/sys/mntns"
	"github.com/aminator-go/aminator/internal/ui/progress"
)

// ExitError is the exit code of a job's re-run child, for the caller to
// exit with (the child has said why).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit %d", e.Code) }

// Console is where a job's records go besides its log file, and where
// its long steps show progress.
type Console interface {
	Handler() slog.Handler
	Progress() progress.Reporter
	// Close ends what is drawn; it is called before the job's error is
	// returned, so nothing is drawn under it.
	Close()
}

// JobOptions say how to run a job.
type JobOptions struct {
	// Kind is bake, foundation or test: it starts the job's id and names
	// it in messages.
	Kind string
	// Preserve keeps the job in this process and the host's namespaces:
	// mounts kept for debugging (--preserve-on-error) must outlive it.
	Preserve bool
	// Stdin is the re-run child's standard input (nil: this process's).
	Stdin io.Reader
	// Console makes the job's console, in the process that runs the job.
	Console func() (Console, error)
	// Log is where what happens before the job's own log exists goes
	// (readying the store).
	Log *slog.Logger
}

// Job is a running job.
type Job struct {
	ID     string
	Kind   string
	Config *config.Config
	// Log writes to the console and, at DEBUG, to the job's log file.
	Log     *slog.Logger
	LogPath string
}

// RunJob runs fn as a job: as root, in private mount and PID namespaces
// (this program runs again as a child in them, unless o.Preserve), with
// SIGINT, SIGTERM and SIGHUP cancelling its context, under a lock named
// after the job's id that gc respects, and with a DEBUG log file of its
// own. In the parent, a child that fails returns an ExitError with its
// exit code; pools the child took volumes from are refilled in the
// background once it ends.
func RunJob(cfg *config.Config, o JobOptions, fn func(ctx context.Context, j *Job) error) error {
	if os.Geteuid() != 0 {
		return errors.New(o.Kind + " needs root: it attaches loop devices, mounts filesystems and chroots")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if !mntns.InChild() {
		// Outside the namespaces: mount (or set up) the store filesystem where the host sees it.
		if err := PrepareEnvironmentStore(cfg, o.Log); err != nil {
			return err
		}
		if !o.Preserve {
			return reexec(cfg, o.Stdin)
		}
	} else if err := mntns.SetupChild(cfg.StateDir); err != nil {
		return err
	}
	ctx, stop := SignalContext()
	defer stop()
	return runHere(ctx, cfg, o, fn)
}

// reexec runs the job in a child in new namespaces and starts the pool
// refills it asks for once it has ended.
func reexec(cfg *config.Config, stdin io.Reader) error {
	refills, err := newRefillList(cfg.StateDir)
	if err != nil {
		return err
	}
	os.Setenv(refillEnv, refills.Path())
	code, err := mntns.Reexec(stdin)
	startRefills(cfg, refills)
	if err != nil {
		return err
	}
	if code != 0 {
		return ExitError{code}
	}
	return nil
}

// runHere runs the job in this process: its id, lock, log file, console.
func runHere(ctx context.Context, cfg *config.Config, o JobOptions, fn func(ctx context.Context, j *Job) error) error {
	id := bake.NewBakeID(time.Now())
	if o.Kind != "bake" {
		id = o.Kind + strings.TrimPrefix(id, "bake")
	}
	// Held while the job runs: gc takes resources tagged with this id for
	// leftovers only when nobody holds it.
	jobLock, err := flock.TryExclusive(filepath.Join(cfg.LockDir, id+".lock"))
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(jobLock.Path())
		jobLock.Unlock()
	}()
	f, fh, err := logging.BakeFile(cfg.LogDir, id)
	if err != nil {
		return err
	}
	defer f.Close()
	con, err := o.Console()
	if err != nil {
		return err
	}
	// Closed before the error is returned: nothing is left drawn under it.
	defer con.Close()
	log := slog.New(slog.NewMultiHandler(con.Handler(), fh))
	ctx = progress.With(ctx, progress.Multi(con.Progress(), progress.Log(log, 10*time.Second)))
	log.Info(o.Kind+" started", "id", id, "log", f.Name(), "environment", cfg.Context.Environment)
	log.Debug("configuration", "sources", cfg.Sources, "context", fmt.Sprintf("%+v", cfg.Context))
	err = fn(ctx, &Job{ID: id, Kind: o.Kind, Config: cfg, Log: log, LogPath: f.Name()})
	if err != nil && ctx.Err() != nil {
		log.Warn(o.Kind+" cancelled; cleaned up", "id", id)
	}
	return err
}

// OpenEnvironment builds the job's environment; a cloud in it with a
// pool asks for its pools to be refilled after the job takes from them.
func (j *Job) OpenEnvironment(ctx context.Context) (*bake.Environment, error) {
	env, err := OpenEnvironment(ctx, j.Config, j.Log)
	if err != nil {
		return nil, err
	}
	if p, ok := env.Cloud.(plugin.Pool); ok {
		p.OnPoolTake(requestRefill)
	}
	return env, nil
}

// diskRestorer reads a snapshot's data through a cloud's DiskFiles.
type diskRestorer struct{ plugin.DiskFiles }

func (r diskRestorer) Restore(ctx context.Context, id, dst string) error {
	return r.RestoreSnapshot(ctx, id, dst)
}

// BootTest boot-tests an image of env's cloud, which must keep its disks
// on this host (plugin.DiskFiles: the local cloud), and tags it with the
// outcome (see BootTest); the console goes beside the job's log, the
// scratch disk in the state directory's tmp/.
func (j *Job) BootTest(ctx context.Context, env *bake.Environment, im *plugin.Image, o boottest.Options) (*boottest.Result, error) {
	name := j.Config.Environments[env.Name][plugin.KindCloud]
	disks, err := plugin.Has[plugin.DiskFiles](env.Cloud, name, "disk files on this host to boot-test (environment "+env.Name+")")
	if err != nil {
		return nil, err
	}
	cfg := j.Config
	o.ConsoleLog = strings.TrimSuffix(j.LogPath, ".log") + ".console.log"
	o.WorkDir = filepath.Join(cfg.StateDir, "tmp")
	o.CacheDir = filepath.Join(cfg.StateDir, "cache")
	o.Accel = cfg.Context.Accel
	o.Watchdog = time.Duration(cfg.Context.KVMWatchdog) * time.Second
	if o.ExpectHTTP == nil {
		o.ExpectHTTP = cfg.Context.ExpectHTTP
	}
	o.Like, o.BootMode, o.SSHUser = cfg.Context.Like, cfg.Context.TestBootMode, cfg.Context.SSHUser
	if o.Timeout == 0 {
		o.Timeout = time.Duration(cfg.Context.BootTimeout) * time.Second
	}
	return BootTest(ctx, env.Cloud, diskRestorer{disks}, im, o, j.Log)
}

// TestImage boot-tests a new image (see BootTest) and returns it as it
// is now, with its boot_test tags, and the test's failure.
func (j *Job) TestImage(ctx context.Context, env *bake.Environment, im *plugin.Image) (*plugin.Image, error) {
	_, err := j.BootTest(ctx, env, im, boottest.Options{})
	if again, gerr := env.Cloud.Image(ctx, plugin.ImageQuery{ID: im.ID}); gerr == nil {
		im = again
	}
	return im, err
}
