package foundation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/engine/imageclean"
	"github.com/aminator-go/aminator/internal/image/debversion"
	"github.com/aminator-go/aminator/internal/image/pkgdb"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
)

// configure leaves nothing of the host in the tree, gives it an fstab,
// cleans it as a bake cleans its image, and reads its package manifest
// and newest kernel.
type configure struct{ b *builder }

func (configure) Name() string { return "configure" }

func (st configure) Run(ctx context.Context, _ *bake.State) (err error) {
	b := st.b
	// The manifest first: a reproducible foundation's identifiers, which
	// the fstab and grub.cfg name, derive from it.
	if b.pkgs, err = manifest(ctx, b.tree, b.log); err != nil {
		return err
	}
	if e := b.o.SourceDateEpoch; e != nil {
		b.seed = seed(b.o, *e, b.pkgs)
		b.uuid, b.espID = derivedUUID(b.seed, "root filesystem"), derivedSerial(b.seed, "EFI system partition")
		b.log.Info("reproducible foundation", "source_date_epoch", *e, "seed", fmt.Sprintf("%x", b.seed[:8]), "root_uuid", b.uuid)
	}
	if err := configureTree(b.tree, b.o, b.uuid, b.espID); err != nil {
		return err
	}
	if grubLayout(b.o.Layout) {
		if err := prepareGRUB(b.tree, b.uuid, b.o.Arch, b.o.Layout); err != nil {
			return err
		}
	}
	if err := cleanTree(b.tree, b.log); err != nil {
		return err
	}
	b.kernel = newestKernel(b.tree)
	return nil
}

// Done refuses a tree with no kernel when one was asked for.
func (st configure) Done(context.Context, *bake.State) error {
	if st.b.o.Kernel && st.b.kernel == "" {
		return errors.New("bootstrap installed no kernel in /boot")
	}
	return nil
}

// configureTree leaves nothing of the host in the tree and gives it an fstab.
func configureTree(tree string, o Options, uuid, espID string) error {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	write := func(rel, content string, mode os.FileMode) error {
		root.Remove(rel) // a symlink (resolv.conf) or the host's copy
		if err := root.WriteFile(rel, []byte(content), mode); err != nil {
			return fmt.Errorf("write /%s: %w", rel, err)
		}
		return nil
	}
	opts, pass := "errors=remount-ro", "1"
	if o.FS == "xfs" {
		opts, pass = "defaults", "0"
	}
	for rel, content := range map[string]string{
		"etc/hostname":    "localhost\n",
		"etc/hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"etc/resolv.conf": "",
		"etc/machine-id":  "", // empty: systemd makes one at first boot
		"etc/fstab":       fstab(uuid, o, opts, pass, espID),
	} {
		if err := write(rel, content, 0o644); err != nil {
			return err
		}
	}
	if o.Profile == ProfileCloud {
		if err := writeCloudFiles(root, o.Arch); err != nil {
			return err
		}
	}
	if hasESP(o.Layout) {
		if err := root.MkdirAll("boot/efi", 0o700); err != nil {
			return err
		}
	}
	return nil
}

// cleanTree removes what the bootstrap left that must not ship, with the
// table a bake cleans its image with (imageclean): apt's lists and
// downloads, the package managers' logs, SSH host keys and the rest.
func cleanTree(tree string, log *slog.Logger) error {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := imageclean.Clean(root, log); err != nil {
		return fmt.Errorf("clean the tree: %w", err)
	}
	return nil
}

func fstab(uuid string, o Options, opts, pass, espID string) string {
	s := fmt.Sprintf("# written by aminator\nUUID=%s\t/\t%s\t%s\t0\t%s\n", uuid, o.FS, opts, pass)
	if hasESP(o.Layout) {
		s += fmt.Sprintf("UUID=%s-%s\t/boot/efi\tvfat\tumask=0077,nofail\t0\t2\n", espID[:4], espID[4:])
	}
	return s
}

// manifest reads the installed packages from the tree's dpkg database.
func manifest(ctx context.Context, tree string, log *slog.Logger) ([]plugin.Package, error) {
	var out bytes.Buffer
	cmd := exec.Command("dpkg-query", "--admindir="+filepath.Join(tree, "var/lib/dpkg"), "-W", "-f", pkgdb.DpkgQueryFormat)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := logging.Run(ctx, log, cmd, &out); err != nil {
		return nil, fmt.Errorf("package manifest: %w", err)
	}
	return pkgdb.ParseDpkgQuery(out.Bytes()), nil
}

// newestKernel returns the version of the newest /boot/vmlinuz-* in tree.
func newestKernel(tree string) string {
	ks, _ := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	var vers []string
	for _, k := range ks {
		vers = append(vers, strings.TrimPrefix(filepath.Base(k), "vmlinuz-"))
	}
	if len(vers) == 0 {
		return ""
	}
	sort.Slice(vers, func(i, j int) bool { return debversion.Compare(vers[i], vers[j]) < 0 })
	return vers[len(vers)-1]
}
