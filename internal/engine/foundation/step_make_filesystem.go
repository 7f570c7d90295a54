package foundation

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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
	if e := b.o.SourceDateEpoch; e != nil {
		if err := clampTimes(b.tree, *e); err != nil {
			return err
		}
	}
	return b.host.MakeFS(ctx, s.Device, layoutPartition(b.o.Layout), b.o.FS, b.uuid, b.tree, filepath.Join(b.work, "mnt"))
}

func makeFS(ctx context.Context, m machine, fstype, uuid, tree, target, mnt string) error {
	switch fstype {
	case "ext4":
		// -d populates the filesystem from the tree: no mount, no copy.
		args := []string{"mkfs.ext4", "-q", "-F", "-L", "root", "-U", uuid}
		if m.epoch != nil {
			// The directory hash seed is random unless given: derived
			// from the UUID, itself derived from the inputs.
			args = append(args, "-E", "hash_seed="+derivedUUID([]byte(uuid), "ext4 hash seed"))
		}
		if err := m.run(ctx, append(args, "-d", tree, target)...); err != nil {
			return err
		}
		if m.epoch != nil {
			return m.clampExt4Ctimes(ctx, target, filepath.Dir(mnt))
		}
		return nil
	case "xfs":
		if err := m.run(ctx, "mkfs.xfs", "-q", "-f", "-L", "root", "-m", "uuid="+uuid, target); err != nil {
			return err
		}
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			return err
		}
		if err := mount.Mount(target, mnt, "xfs", 0, "nouuid"); err != nil {
			return err
		}
		defer mount.Unmount(context.WithoutCancel(ctx), mnt, nil)
		return m.run(ctx, "cp", "-a", "--sparse=always", tree+"/.", mnt+"/")
	}
	return fmt.Errorf("filesystem %q", fstype)
}

// clampExt4Ctimes sets the change time of every inode mke2fs -d filled
// to the epoch, with one debugfs run (work is scratch for its commands).
func (m machine) clampExt4Ctimes(ctx context.Context, target, work string) error {
	var out bytes.Buffer
	cmd := exec.Command("dumpe2fs", target)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if err := logging.Run(ctx, m.log, cmd, &out); err != nil {
		return fmt.Errorf("dumpe2fs: %w", err)
	}
	inodes, err := usedInodes(out.String())
	if err != nil {
		return err
	}
	cmds, err := writeTemp(work, "debugfs-", ext4CtimeCommands(inodes, *m.epoch))
	if err != nil {
		return err
	}
	defer os.Remove(cmds)
	// debugfs echoes each command on stdout, and says what failed on
	// stderr, after its banner, while still exiting 0.
	fix := exec.Command("debugfs", "-w", "-f", cmds, target)
	fix.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}, reproEnv(m.epoch)...)
	var failed []string
	err = logging.RunLines(ctx, m.log, fix, io.Discard, func(line string) {
		if !strings.HasPrefix(line, "debugfs ") && len(failed) < 3 {
			failed = append(failed, line)
		}
	})
	if err == nil && len(failed) > 0 {
		err = errors.New(strings.Join(failed, "; "))
	}
	if err != nil {
		return fmt.Errorf("debugfs: set change times: %w", err)
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
