package foundation

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/plugin"
)

// The seed is the inputs that decide the disk's bytes, and nothing else:
// not the image's name or tags, not the order dpkg lists packages in.
func TestSeed(t *testing.T) {
	o := Options{Release: "bookworm", Arch: "x86_64", Profile: ProfileCloud, Layout: "hybrid", FS: "ext4", SizeGiB: 2, Kernel: true}
	pkgs := []plugin.Package{{Name: "bash", Version: "5.2-1", Arch: "amd64"}, {Name: "base-files", Version: "12.4", Arch: "amd64"}}
	s := seed(o, 1700000000, pkgs)
	named := o
	named.Name, named.Suffix, named.Creator, named.Tags = "other", "s2", "me", map[string]string{"team": "x"}
	if !bytes.Equal(s, seed(named, 1700000000, []plugin.Package{pkgs[1], pkgs[0]})) {
		t.Error("the seed depends on the image's name, tags or the package order")
	}
	newer := []plugin.Package{{Name: "bash", Version: "5.2-2", Arch: "amd64"}, pkgs[1]}
	for what, other := range map[string][]byte{
		"epoch":    seed(o, 1700000001, pkgs),
		"packages": seed(o, 1700000000, newer),
		"size":     seed(Options{Release: "bookworm", Arch: "x86_64", Profile: ProfileCloud, Layout: "hybrid", FS: "ext4", SizeGiB: 3, Kernel: true}, 1700000000, pkgs),
	} {
		if bytes.Equal(s, other) {
			t.Errorf("another %s gives the same seed", what)
		}
	}
	u, v := derivedUUID(s, "root filesystem"), derivedUUID(s, "GPT disk")
	if u == v || u != derivedUUID(s, "root filesystem") || u[14] != '4' || !strings.ContainsAny(u[19:20], "89ab") {
		t.Errorf("derived UUIDs %s %s", u, v)
	}
	if serial := derivedSerial(s, "esp"); len(serial) != 8 || strings.ToUpper(serial) != serial {
		t.Errorf("serial %q", serial)
	}
}

func TestParseEpoch(t *testing.T) {
	now := time.Unix(1800000000, 0)
	if n, err := ParseEpoch(" 1700000000\n", now); err != nil || n != 1700000000 {
		t.Errorf("ParseEpoch: %d %v", n, err)
	}
	for _, bad := range []string{"", "x", "-1", "1.5", "1900000000"} {
		if _, err := ParseEpoch(bad, now); err == nil {
			t.Errorf("ParseEpoch(%q) accepted", bad)
		}
	}
	e := int64(1)
	o := Options{FS: "xfs", Profile: ProfileMinimal, SourceDateEpoch: &e}
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "--fs ext4") {
		t.Errorf("xfs with an epoch: %v", err)
	}
}

// sfdisk's input gets the disk's GUID and one per partition, by name.
func TestWithGUIDs(t *testing.T) {
	s := seed(Options{}, 1, nil)
	got := withGUIDs(partitionTable("hybrid"), s)
	want := "label: gpt\nlabel-id: " + strings.ToUpper(derivedUUID(s, "GPT disk")) + "\n"
	if !strings.HasPrefix(got, want) || strings.Count(got, ", uuid=") != 3 ||
		!strings.Contains(got, "name=root, uuid="+strings.ToUpper(derivedUUID(s, "GPT partition root"))+"\n") {
		t.Errorf("table:\n%s", got)
	}
}

func TestUsedInodes(t *testing.T) {
	out := "Inode count:              24\nInodes per group:         8\nFirst inode:              11\nFree inodes:              9\nGroup descriptor size:    64\n" +
		"\nGroup 0: (Blocks 1-8192)\n  Free inodes: 6-8\nGroup 1: (Blocks 8193-16384)\n  Free inodes: 12, 14-16\nGroup 2: (Blocks 16385-24576)\n  Free inodes: 17-24\n"
	got, err := usedInodes(out)
	if err != nil || fmt.Sprint(got) != "[2 11 13]" {
		t.Errorf("usedInodes: %v %v", got, err)
	}
}

// clampTimes leaves earlier times and clamps later ones, of links too.
func TestClampTimes(t *testing.T) {
	tree := t.TempDir()
	old := filepath.Join(tree, "old")
	os.WriteFile(old, nil, 0o644)
	os.Chtimes(old, time.Unix(100, 0), time.Unix(100, 5))
	os.WriteFile(filepath.Join(tree, "new"), nil, 0o644)
	os.Symlink("new", filepath.Join(tree, "link"))
	if err := clampTimes(tree, 1000); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"old": 100, "new": 1000, "link": 1000, ".": 1000} {
		var st unix.Stat_t
		unix.Lstat(filepath.Join(tree, name), &st)
		if st.Mtim.Sec != want || (name == "old" && st.Mtim.Nsec != 5) {
			t.Errorf("%s: mtime %d.%09d, want %d", name, st.Mtim.Sec, st.Mtim.Nsec, want)
		}
		if name != "old" && st.Atim.Sec != want {
			t.Errorf("%s: atime %d, want %d", name, st.Atim.Sec, want)
		}
	}
}

// The host's half of a reproducible foundation, on a hybrid disk image:
// the GPT, the EFI system partition (FAT, written by mtools) and the ext4
// root (mke2fs -d, its change times rewritten) are the same bytes from
// trees written at different times and in different orders, and differ with another epoch or with
// none. grub-mkimage needs a tree's GRUB modules, so the whole foundation
// test (test/e2e) covers it.
func TestReproducibleDisk(t *testing.T) {
	for _, tool := range []string{"sfdisk", "mkfs.ext4", "mkfs.vfat", "mcopy", "debugfs", "dumpe2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices)")
	}
	e1, e2 := int64(1700000000), int64(1700000001)
	a := reproDisk(t, &e1, false)
	time.Sleep(1100 * time.Millisecond) // the second tree's files change a second later
	b := reproDisk(t, &e1, true)
	if !bytes.Equal(a, b) {
		t.Errorf("two disks of the same inputs differ: %s", firstDiffs(a, b))
	}
	if bytes.Equal(a, reproDisk(t, &e2, false)) {
		t.Error("another epoch gives the same disk")
	}
	if bytes.Equal(reproDisk(t, nil, false), reproDisk(t, nil, false)) {
		t.Error("two ordinary (not reproducible) disks are the same: their UUIDs should be random")
	}
}

// reproDisk makes a hybrid disk image as a foundation does from a small
// tree written now (its files in the reverse order if reverse), and
// returns its bytes.
func reproDisk(t *testing.T, epoch *int64, reverse bool) []byte {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "root")
	for j := range 300 { // enough entries for an indexed directory
		i := j
		if reverse {
			i = 299 - j
		}
		p := filepath.Join(tree, "usr/share/many", fmt.Sprintf("file-%03d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat("x", i)), 0o644)
	}
	os.Symlink("usr/share", filepath.Join(tree, "share"))
	efi := filepath.Join(dir, "grubx64.efi")
	os.WriteFile(efi, []byte("MZ not really a loader"), 0o644)
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil || os.Truncate(disk, 160<<20) != nil {
		t.Fatal("disk image", err)
	}
	ctx := context.Background()
	m := machine{log: slog.New(slog.DiscardHandler), epoch: epoch}
	table, uuid, espID := partitionTable("hybrid"), newUUID(), "0000ABCD"
	if epoch != nil {
		s := seed(Options{Release: "bookworm", Layout: "hybrid"}, *epoch, nil)
		table, uuid, espID = withGUIDs(table, s), derivedUUID(s, "root filesystem"), derivedSerial(s, "EFI system partition")
		if err := clampTimes(tree, *epoch); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Partition(ctx, disk, table); err != nil {
		t.Fatal(err)
	}
	if err := makeGRUBESP(ctx, m, disk, efi, espID, "x86_64"); err != nil {
		t.Fatal(err)
	}
	if err := m.MakeFS(ctx, disk, rootPart, "ext4", uuid, tree, filepath.Join(dir, "mnt")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	// The ESP's serial (FAT32's volume id, at 0x43 of its boot sector) is
	// the one the fstab names.
	if id := b[8192*512+0x43 : 8192*512+0x47]; fmt.Sprintf("%02X%02X%02X%02X", id[3], id[2], id[1], id[0]) != espID {
		t.Errorf("the EFI system partition's serial is %X, not %s", id, espID)
	}
	return b
}

// firstDiffs says where two disks differ: the first few offsets.
func firstDiffs(a, b []byte) string {
	var out []string
	for i := 0; i < len(a) && i < len(b) && len(out) < 8; i++ {
		if a[i] != b[i] {
			out = append(out, fmt.Sprintf("%#x", i))
		}
	}
	return strings.Join(out, " ")
}
