package foundation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/plugin"
)

// A reproducible foundation (Options.SourceDateEpoch set) is the same disk,
// byte for byte, from the same inputs: every identifier that is random in
// an ordinary foundation (filesystem UUID and hash seed, GPT disk and
// partition GUIDs, the FAT volume serial) is derived from a hash of the
// resolved inputs (seed), and every time that would be the build's is the
// epoch: the tree's file times are clamped to it before mkfs (clampTimes),
// the tools that write times are given it (reproEnv), and the inode change
// times mke2fs -d copies from the tree, which no program can set, are
// rewritten in the new filesystem (ext4CtimeCommands).

// seed hashes a foundation's resolved inputs: what decides the disk's
// bytes. The name, suffix, tags and creator are not among them (they are
// the image's, not the disk's), nor the mirror (the package versions are).
func seed(o Options, epoch int64, pkgs []plugin.Package) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "aminator foundation v1\nrelease=%s\narch=%s\nprofile=%s\nlayout=%s\nfs=%s\nsize=%d\nkernel=%t\nepoch=%d\ninclude=%s\n",
		o.Release, o.Arch, o.Profile, o.Layout, o.FS, o.SizeGiB, o.Kernel, epoch, strings.Join(o.Include, ","))
	lines := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		lines = append(lines, fmt.Sprintf("%s %s %s", p.Name, p.Version, p.Arch))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return h.Sum(nil)
}

// derivedUUID is a version 4 (random) UUID whose random bits are the
// seed's hash with purpose, so one seed gives each identifier its own.
func derivedUUID(seed []byte, purpose string) string {
	b := derive(seed, purpose)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// derivedSerial is a FAT volume serial (8 hex digits) derived from seed.
func derivedSerial(seed []byte, purpose string) string {
	b := derive(seed, purpose)
	return strings.ToUpper(hex.EncodeToString(b[:4]))
}

func derive(seed []byte, purpose string) []byte {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte("\x00" + purpose))
	return h.Sum(nil)
}

// reproEnv is what the host's tools are given of the epoch: the convention
// SOURCE_DATE_EPOCH (mmdebstrap, mtools, grub-mkimage, mkinitramfs and
// the maintainer scripts), and e2fsprogs' own clock.
func reproEnv(epoch *int64) []string {
	if epoch == nil {
		return nil
	}
	n := strconv.FormatInt(*epoch, 10)
	return []string{"SOURCE_DATE_EPOCH=" + n, "E2FSPROGS_FAKE_TIME=" + n}
}

// ParseEpoch reads a SOURCE_DATE_EPOCH value: whole seconds since 1970, not
// in the future (a clamp to a later time clamps nothing).
func ParseEpoch(s string, now time.Time) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("source date epoch %q: whole seconds since 1970-01-01 UTC", s)
	}
	if n > now.Unix() {
		return 0, fmt.Errorf("source date epoch %d is in the future (%s): the tree's times are clamped to it, so it must not be later than the build", n, time.Unix(n, 0).UTC().Format(time.RFC3339))
	}
	return n, nil
}

// clampTimes sets every file time in tree later than epoch to epoch (the
// access and modification times; symlinks' own), so the filesystem made
// from it does not carry the build's clock. The whole tree is listed
// first: reading a directory after its times were set would set its
// access time again.
func clampTimes(tree string, epoch int64) error {
	var paths []string
	err := filepath.WalkDir(tree, func(path string, _ fs.DirEntry, err error) error {
		paths = append(paths, path)
		return err
	})
	if err != nil {
		return fmt.Errorf("clamp times: %w", err)
	}
	limit := unix.NsecToTimespec(epoch * int64(time.Second))
	clamp := func(t unix.Timespec) unix.Timespec {
		if t.Sec > limit.Sec || (t.Sec == limit.Sec && t.Nsec > 0) {
			return limit
		}
		return t
	}
	for _, path := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return fmt.Errorf("clamp times: %w", err)
		}
		ts := []unix.Timespec{clamp(st.Atim), clamp(st.Mtim)}
		if ts[0] == st.Atim && ts[1] == st.Mtim {
			continue
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("clamp times of %s: %w", path, err)
		}
	}
	return nil
}

// usedInodes reads dumpe2fs's listing of a filesystem and returns its
// inodes in use that mke2fs -d filled from the tree: the root directory
// and those from the first non-reserved inode on.
func usedInodes(dumpe2fs string) ([]uint64, error) {
	var count, first uint64
	var free [][2]uint64
	for _, line := range strings.Split(dumpe2fs, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Inode count":
			count, _ = strconv.ParseUint(v, 10, 64)
		case "First inode":
			first, _ = strconv.ParseUint(v, 10, 64)
		case "Free inodes":
			if strings.HasPrefix(line, " ") { // a group's, not the superblock's count
				r, err := parseRanges(v)
				if err != nil {
					return nil, err
				}
				free = append(free, r...)
			}
		}
	}
	if count == 0 || first == 0 {
		return nil, errors.New("dumpe2fs: no inode count")
	}
	isFree := func(i uint64) bool {
		for _, r := range free {
			if i >= r[0] && i <= r[1] {
				return true
			}
		}
		return false
	}
	var used []uint64
	for i := uint64(1); i <= count; i++ {
		if (i == 2 || i >= first) && !isFree(i) {
			used = append(used, i)
		}
	}
	return used, nil
}

// parseRanges reads dumpe2fs's "1-5, 8, 10-12" (or nothing).
func parseRanges(s string) ([][2]uint64, error) {
	var out [][2]uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.ParseUint(a, 10, 64)
		hi := lo
		if err == nil && isRange {
			hi, err = strconv.ParseUint(b, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("dumpe2fs: inode range %q", part)
		}
		out = append(out, [2]uint64{lo, hi})
	}
	return out, nil
}

// ext4CtimeCommands are debugfs's commands that set each inode's change
// time to epoch: mke2fs -d copies it from the tree, where it is the time
// the file was written and cannot be set.
func ext4CtimeCommands(inodes []uint64, epoch int64) string {
	var b strings.Builder
	for _, i := range inodes {
		fmt.Fprintf(&b, "set_inode_field <%d> ctime @%d\n", i, epoch)
	}
	return b.String()
}

// writeTemp writes content to a new file in dir and returns its path.
func writeTemp(dir, pattern, content string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}
