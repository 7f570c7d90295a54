package foundation

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/sys/mount"
)

// makeFilesystem writes the tree into the root filesystem: mkfs.ext4 -d
// with no mount and no copy, or mkfs.xfs and a copy.
type makeFilesystem struct{ b *builder }

func (makeFilesystem) Name() string { return "make filesystem" }

func (st makeFilesystem) Run(ctx context.Context, s *bake.State) error {
	b := st.b
	return b.host.MakeFS(ctx, s.Device, layoutPartition(b.o.Layout), b.o.FS, b.uuid, b.tree, filepath.Join(b.work, "mnt"))
}

func makeFS(ctx context.Context, fstype, uuid, tree, target, mnt string, log *slog.Logger) error {
	switch fstype {
	case "ext4":
		// -d populates the filesystem from the tree: no mount, no copy.
		return logging.Host(ctx, log, "mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid, "-d", tree, target)
	case "xfs":
		if err := logging.Host(ctx, log, "mkfs.xfs", "-q", "-f", "-L", "root", "-m", "uuid="+uuid, target); err != nil {
			return err
		}
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			return err
		}
		if err := mount.Mount(target, mnt, "xfs", 0, "nouuid"); err != nil {
			return err
		}
		defer mount.Unmount(context.WithoutCancel(ctx), mnt, nil)
		return logging.Host(ctx, log, "cp", "-a", "--sparse=always", tree+"/.", mnt+"/")
	}
	return fmt.Errorf("filesystem %q", fstype)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
