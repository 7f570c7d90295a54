package foundation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/engine/bake"
)

// scratch makes the directory the tree is built in, on tmpfs when there
// is room; it is removed when the foundation ends.
type scratch struct{ b *builder }

func (scratch) Name() string { return "" }

func (st scratch) Run(_ context.Context, s *bake.State) error {
	b := st.b
	dir, err := scratchDir(b.o.ScratchDir, s.Env.StateDir)
	if err != nil {
		return err
	}
	if b.work, err = os.MkdirTemp(dir, "aminator-foundation-"); err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	work := b.work
	s.Undo.Release("remove "+work, "", func(context.Context) error { return os.RemoveAll(work) })
	b.tree = filepath.Join(work, "root")
	s.Log.Info("bootstrapping", "release", b.o.Release, "mirror", b.o.Mirror, "kernel", b.o.Kernel, "scratch", work)
	return nil
}

// scratchDir picks tmpfs when it has room for a bootstrap, else the state directory.
func scratchDir(given, stateDir string) (string, error) {
	if given != "" {
		return given, os.MkdirAll(given, 0o700)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err == nil && int64(st.Bavail)*st.Bsize > 3<<30 {
		return "/dev/shm", nil
	}
	d := filepath.Join(stateDir, "tmp")
	return d, os.MkdirAll(d, 0o700)
}
