package bootdisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// loaderArch maps the removable-media loaders' names to architectures.
var loaderArch = map[string]string{"BOOTX64.EFI": "x86_64", "BOOTAA64.EFI": "arm64"}

const (
	// mdirTimeout bounds one mdir run (a real ESP takes milliseconds).
	mdirTimeout = 30 * time.Second
	// maxListing is as much of mdir's output as is kept.
	maxListing = 1 << 20
	// maxESPCopy is the largest EFI system partition DetectFrom copies
	// (real ones are 100 MiB to 1 GiB, mostly zeros, which are not written).
	maxESPCopy = 4 << 30
)

// mdirLoaders lists \EFI\BOOT of the FAT filesystem at offset in file
// with mtools, and finds the removable-media loaders in it.
func mdirLoaders(ctx context.Context, file string, offset int64) (espResult, error) {
	if strings.Contains(file, "@@") { // mtools' own offset syntax
		return espResult{}, fmt.Errorf("mtools cannot read %s: its name has @@", file)
	}
	ctx, cancel := context.WithTimeout(ctx, mdirTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mdir", "-b", "-i", fmt.Sprintf("%s@@%d", file, offset), "::/EFI/BOOT")
	// No user or system configuration changes what mdir reads or prints.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/nonexistent", "MTOOLSRC=/dev/null", "MTOOLS_SKIP_CHECK=1"}
	var out, errb capped
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return espResult{}, fmt.Errorf("reading an EFI system partition needs mtools (mdir): %w", err)
	case ctx.Err() != nil:
		return espResult{}, fmt.Errorf("mdir: %w", ctx.Err())
	case errors.As(err, &ee):
		return espResult{note: mdirNote(errb.String())}, nil
	case err != nil:
		return espResult{}, fmt.Errorf("mdir: %w", err)
	}
	return parseListing(out.String()), nil
}

// mdirNote says why mdir listed nothing.
func mdirNote(stderr string) string {
	if strings.Contains(stderr, "not found") {
		return `has no \EFI\BOOT directory`
	}
	line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	return "is not a FAT filesystem mtools can read (" + line + ")"
}

// parseListing finds the loaders in mdir -b's listing of \EFI\BOOT, one
// path a line (directories end in /); FAT names match whatever their case.
func parseListing(listing string) espResult {
	var res espResult
	for _, line := range strings.Split(listing, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasSuffix(line, "/") {
			continue
		}
		name := line[strings.LastIndex(line, "/")+1:]
		if a, ok := loaderArch[strings.ToUpper(name)]; ok {
			res.archs = append(res.archs, a)
		}
	}
	if len(res.archs) == 0 {
		res.note = `has no \EFI\BOOT\BOOTX64.EFI or \EFI\BOOT\BOOTAA64.EFI`
	}
	return res
}

// copiedESP copies partition p of r (its data; zeros stay holes) to a
// file in scratch and lists its loaders; the file is removed.
func copiedESP(ctx context.Context, r io.ReaderAt, p part, scratch string) (espResult, error) {
	if p.size > maxESPCopy {
		return espResult{note: fmt.Sprintf("is %d MiB, larger than any EFI system partition: not read", p.size>>20)}, nil
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return espResult{}, err
	}
	f, err := os.CreateTemp(scratch, "esp-*.img")
	if err != nil {
		return espResult{}, err
	}
	defer os.Remove(f.Name())
	err = copyRange(ctx, f, r, p.start, p.size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return espResult{}, fmt.Errorf("copy it for mdir: %w", err)
	}
	return mdirLoaders(ctx, f.Name(), 0)
}

// copyRange copies n bytes of r at off to the start of f, sparse.
func copyRange(ctx context.Context, f *os.File, r io.ReaderAt, off, n int64) error {
	buf := make([]byte, 1<<20)
	for done := int64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := buf[:min(int64(len(buf)), n-done)]
		if err := readFull(r, b, off+done); err != nil {
			return err
		}
		if !allZero(b) {
			if _, err := f.WriteAt(b, done); err != nil {
				return err
			}
		}
		done += int64(len(b))
	}
	return f.Truncate(n)
}

// capped keeps the first maxListing bytes written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxListing - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
