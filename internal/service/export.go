package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/aminator-go/aminator/internal/engine/imageref"
	"github.com/aminator-go/aminator/internal/logging"
	"github.com/aminator-go/aminator/internal/plugin"
)

// exportFormats maps a file extension to its format (img is raw).
var exportFormats = map[string]string{"raw": "raw", "img": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhdx": "vhdx"}

// ExportFormat is the format of an export to file: format when given
// (raw, qcow2, vmdk or vhdx), else the one file's extension names, else
// raw. ok is false for a format that is none of these.
func ExportFormat(format, file string) (string, bool) {
	if format == "" {
		format = exportFormats[strings.TrimPrefix(filepath.Ext(file), ".")]
		if format == "" {
			format = "raw"
		}
	}
	if _, ok := exportFormats[format]; !ok || format == "img" {
		return format, false
	}
	return format, true
}

// Restorer writes a snapshot's data into a new file.
type Restorer interface {
	Restore(ctx context.Context, id, dst string) error
}

// Export writes the root disk of im to file out in format (see
// ExportFormat): raw straight from the store, the others converted with
// qemu-img. out appears only once it is whole.
func Export(ctx context.Context, store Restorer, im *plugin.Image, format, out string, log *slog.Logger) error {
	snap, err := RootSnapshot(im)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if format == "raw" {
		return store.Restore(ctx, snap, abs)
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return fmt.Errorf("export to %s needs qemu-img (Debian: apt-get install qemu-utils): %w", format, err)
	}
	tmpRaw := abs + ".raw.tmp"
	tmpOut := abs + ".tmp"
	defer os.Remove(tmpRaw)
	defer os.Remove(tmpOut)
	if err := store.Restore(ctx, snap, tmpRaw); err != nil {
		return err
	}
	if err := logging.Host(ctx, log, "qemu-img", "convert", "-f", "raw", "-O", format, tmpRaw, tmpOut); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmpOut, abs); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// ExportImage writes the root disk of the image ref names (by id, name or
// FAMILY:LABEL) in cloud c, whose disks are on this host, to file out in
// format (see Export), and returns the image.
func ExportImage(ctx context.Context, c imageref.Finder, disks plugin.DiskFiles, ref, format, out string, log *slog.Logger) (*plugin.Image, error) {
	im, err := Find(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	return im, Export(ctx, diskRestorer{disks}, im, format, out, log)
}
