// Package bootdisktest makes small real disks for tests of boot loader
// detection: sparse files partitioned with sfdisk, a stand-in for MBR boot
// code, an EFI system partition made with mkfs.vfat and mtools holding
// dummy loaders, and a root filesystem image copied into the last
// partition. A test skips when the tools are missing.
package bootdisktest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/sys/sparse"
)

// Disk describes a disk to make.
type Disk struct {
	// Label is "gpt", "dos" or "" (no partition table).
	Label string
	// BootCode fills the MBR's first 440 bytes with a stand-in for boot code.
	BootCode bool
	// BIOSBoot adds a 1 MiB BIOS boot partition (gpt).
	BIOSBoot bool
	// ESP adds a 32 MiB EFI system partition (gpt) holding Loaders in
	// \EFI\BOOT (say "BOOTX64.EFI"; none: an empty ESP).
	ESP     bool
	Loaders []string
	// Root is a filesystem image copied into the last partition (sized
	// to fit); "" makes an empty 8 MiB one.
	Root string
}

const mib = 1 << 20

// BootCode is the stand-in for boot code: a jump and text, as GRUB's
// boot.img starts.
var BootCode = append([]byte{0xEB, 0x63, 0x90}, bytes.Repeat([]byte("aminator test boot code "), 19)[:437]...)

// Need skips t when a tool making disks is missing.
func Need(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.vfat", "mmd", "mcopy", "mdir"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

// Make makes the disk in dir and returns its path and its root
// partition's number (0 without a table).
func Make(t testing.TB, dir string, d Disk) (path string, rootPart int) {
	t.Helper()
	Need(t)
	path = filepath.Join(dir, fmt.Sprintf("disk-%d.img", len(mustGlob(t, filepath.Join(dir, "disk-*.img")))))
	rootSize := int64(8 * mib)
	if d.Root != "" {
		st, err := os.Stat(d.Root)
		if err != nil {
			t.Fatal(err)
		}
		rootSize = (st.Size() + mib - 1) / mib * mib
	}
	script, rootStart, rootPart := layout(d, rootSize)
	size := rootStart + rootSize + mib // room for the backup GPT
	if d.Label == "" {
		size, rootStart = rootSize, 0
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	if d.Label != "" {
		run(t, strings.NewReader(script), nil, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path)
	}
	if d.BootCode {
		writeAt(t, path, BootCode, 0)
	}
	if d.ESP {
		writeFile(t, path, makeESP(t, dir, d.Loaders), espStart(d))
	}
	if d.Root != "" {
		writeFile(t, path, d.Root, rootStart)
	}
	return path, rootPart
}

// layout is the sfdisk script: BIOS boot partition, ESP, root.
func layout(d Disk, rootSize int64) (script string, rootStart int64, rootPart int) {
	var b strings.Builder
	b.WriteString("label: " + d.Label + "\n")
	start, n := int64(mib), 0
	add := func(size int64, typ string) {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s\n", start/512, size/512, typ)
		start += size
		n++
	}
	if d.Label == "gpt" && d.BIOSBoot {
		add(mib, "21686148-6449-6E6F-744E-656564454649")
	}
	if d.Label == "gpt" && d.ESP {
		add(32*mib, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	}
	rootStart = start
	if d.Label == "gpt" {
		add(rootSize, "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	} else {
		add(rootSize, "83")
	}
	return b.String(), rootStart, n
}

func espStart(d Disk) int64 {
	if d.BIOSBoot {
		return 2 * mib
	}
	return mib
}

// makeESP makes a 32 MiB FAT filesystem with the loaders in \EFI\BOOT.
func makeESP(t testing.TB, dir string, loaders []string) string {
	t.Helper()
	esp := filepath.Join(dir, "esp.img")
	os.Remove(esp)
	f, err := os.Create(esp)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(32 * mib)
	f.Close()
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	run(t, nil, nil, "mkfs.vfat", "-n", "EFI", esp)
	run(t, nil, env, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT")
	for _, l := range loaders {
		src := filepath.Join(dir, "loader.efi")
		if err := os.WriteFile(src, []byte("MZ not really a loader: "+l), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, nil, env, "mcopy", "-o", "-i", esp, src, "::/EFI/BOOT/"+l)
	}
	return esp
}

func run(t testing.TB, stdin *strings.Reader, env []string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func writeAt(t testing.TB, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// writeFile copies src's data (not its holes) into path at off.
func writeFile(t testing.TB, path, src string, off int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	st, _ := in.Stat()
	out, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	exts, err := sparse.DataExtents(in, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, mib)
	for _, e := range exts {
		for done := int64(0); done < e.Len; {
			n, err := in.ReadAt(buf[:min(int64(len(buf)), e.Len-done)], e.Off+done)
			if n == 0 && err != nil {
				t.Fatal(err)
			}
			if _, err := out.WriteAt(buf[:n], off+e.Off+done); err != nil {
				t.Fatal(err)
			}
			done += int64(n)
		}
	}
}

func mustGlob(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
