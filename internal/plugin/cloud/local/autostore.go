package local

// Whether a state directory without reflinks can get a reflink store of
// its own (store_fs: auto), and, when it cannot, the one line that says
// why and how to fix it.

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/aminator-go/aminator/internal/store/snapstore"
)

// mkfsPackage names the package that installs each filesystem's mkfs (the
// same name on Debian, Ubuntu, Fedora and their kin).
var mkfsPackage = map[string]string{"xfs": "xfsprogs", "btrfs": "btrfs-progs"}

// sbinDirs are where a mkfs is looked for besides $PATH, which may lack
// them (sudo's secure_path, cron).
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// hasMkfs reports whether mkfs.fstype is installed.
func hasMkfs(fstype string) bool {
	if _, err := exec.LookPath("mkfs." + fstype); err == nil {
		return true
	}
	for _, d := range sbinDirs {
		if st, err := os.Stat(filepath.Join(d, "mkfs."+fstype)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// kernelHas reports whether the kernel can mount fstype: built in, loaded,
// or as a module.
func kernelHas(fstype string) bool {
	if f, err := os.Open("/proc/filesystems"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if fields := strings.Fields(s.Text()); len(fields) > 0 && fields[len(fields)-1] == fstype {
				return true
			}
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	for _, list := range []string{"modules.dep", "modules.builtin"} {
		b, err := os.ReadFile(filepath.Join("/lib/modules", rel, list))
		if err == nil && strings.Contains(string(b), "/"+fstype+".ko") {
			return true
		}
	}
	return false
}

// noStore says why a state directory gets no reflink store of its own,
// and what would give it one.
type noStore struct{ why, fix string }

// told records the state directories this process has said noStore for.
var told sync.Map

// say logs no at INFO, once per process and state directory: every bake
// on such a store takes the slow path (volumes restored from chunks,
// snapshots reading every allocated chunk), which a user must hear of
// without asking for the debug log.
func (no *noStore) say(log *slog.Logger, stateDir string) {
	if _, again := told.LoadOrStore(stateDir, true); again {
		return
	}
	log.Info("no reflink store: volumes are full copies and snapshots read every allocated chunk (seconds per GiB of base)",
		"why", no.why, "fix", no.fix, "state_dir", stateDir,
		"keep_it", "store_fs: none in aminator.yml or AMINATOR_STORE_FS=none (then this is not said)")
}

// autoChoice picks the filesystem for an automatic store (mode auto: xfs,
// else btrfs; or the one mode names). It picks none, with no reason, where
// data/ has reflinks already; it picks none and says why (noStore) when
// this host cannot make one, or when the state directory holds a store
// (never converted).
func autoChoice(stateDir, mode string) (string, *noStore) {
	content := storeContent(stateDir)
	probe := filepath.Join(stateDir, "data")
	if _, err := os.Stat(probe); err != nil {
		probe = stateDir
		if err := os.MkdirAll(probe, 0o700); err != nil {
			return "", &noStore{why: err.Error(), fix: "make the state directory writable"}
		}
	}
	if snapstore.CanReflink(probe) {
		return "", nil
	}
	want := []string{mode}
	if mode == "auto" {
		want = []string{"xfs", "btrfs"}
	}
	then := "; the next command then sets the store up"
	if content != "" {
		then = ", then aminate init --store-fs " + want[0] + " on an empty state directory (this one holds a store, and a store is never converted)"
	}
	var inKernel []string
	for _, fs := range want {
		if !kernelHas(fs) {
			continue
		}
		if hasMkfs(fs) {
			if content != "" {
				return "", &noStore{why: content, fix: "aminate init --store-fs " + fs + " on an empty state directory gives one (a state directory that holds a store is never converted)"}
			}
			return fs, nil
		}
		inKernel = append(inKernel, fs)
	}
	if len(inKernel) == 0 {
		return "", &noStore{why: "the kernel has no " + strings.Join(want, " or "),
			fix: "a kernel with " + want[0] + " (modprobe " + want[0] + ")" + then}
	}
	var mkfs, pkgs []string
	for _, fs := range inKernel {
		mkfs, pkgs = append(mkfs, "mkfs."+fs), append(pkgs, mkfsPackage[fs])
	}
	return "", &noStore{why: "no " + strings.Join(mkfs, " or ") + " on this host",
		fix: "install " + strings.Join(pkgs, " or ") + " (scripts/setup.sh installs both)" + then}
}
