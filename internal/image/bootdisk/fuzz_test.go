package bootdisk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil/bootdisktest"
)

// seedDisks are real 64 KiB disks made with sfdisk on sparse files, with
// and without boot code: small enough for the fuzzer to mutate whole.
func seedDisks(f *testing.F) [][]byte {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		return nil
	}
	dir := f.TempDir()
	var out [][]byte
	for i, script := range []string{
		"label: gpt\nfirst-lba: 34\nstart=34,size=16,type=21686148-6449-6E6F-744E-656564454649\nstart=50,size=40,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n",
		"label: gpt\nfirst-lba: 34\nstart=34,size=60,type=0FC63DAF-8483-4772-8E79-3D69D8477DE4,attrs=LegacyBIOSBootable\n",
		"label: dos\nstart=1,size=100,type=83,bootable\nstart=101,size=20,type=ef\n",
	} {
		path := filepath.Join(dir, "seed.img")
		os.Remove(path)
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			f.Fatal(err)
		}
		os.Truncate(path, 64<<10)
		cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path)
		cmd.Stdin = strings.NewReader(script)
		if b, err := cmd.CombinedOutput(); err != nil {
			f.Fatalf("sfdisk seed %d: %v\n%s", i, err, b)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		withCode := bytes.Clone(b)
		copy(withCode, bootdisktest.BootCode)
		out = append(out, b, withCode)
	}
	return out
}

// Whatever the bytes, detection ends with loaders or an error, never a
// panic, and every partition it hands on lies inside the disk.
func FuzzDetect(f *testing.F) {
	for _, d := range seedDisks(f) {
		f.Add(d)
	}
	f.Add([]byte{})
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, disk []byte) {
		esp := func(_ context.Context, p part) (espResult, error) {
			if p.start < 0 || p.size <= 0 || p.start+p.size > int64(len(disk)) {
				t.Fatalf("partition %d at %d+%d outside a disk of %d bytes", p.num, p.start, p.size, len(disk))
			}
			if bytes.Contains(disk[p.start:p.start+p.size], []byte("BOOTX64")) {
				return espResult{archs: []string{"x86_64"}}, nil
			}
			return espResult{note: "has no loader"}, nil
		}
		check := func(disk []byte) {
			l, err := detect(context.Background(), bytes.NewReader(disk), int64(len(disk)), esp)
			if err != nil {
				return
			}
			if _, err := Mode(l, "x86_64", ""); err != nil && l.Tag() != TagNone {
				t.Errorf("%+v has a loader, yet %v", l, err)
			}
		}
		check(disk)
		// Again with the CRC32s made right, so that mutations reach
		// the bounds checks behind them.
		if last := int64(len(disk))/sector - 1; last >= 1 {
			disk = bytes.Clone(disk)
			resum(disk, 1)
			resum(disk, last)
			check(disk)
		}
	})
}
