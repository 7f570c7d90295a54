package distro

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin/distro/chroot"
)

// A cloud foundation boots through GRUB images aminator assembled when it
// built the foundation (a core image in the BIOS boot partition, an EFI
// image in the EFI system partition) and a static /boot/grub/grub.cfg that
// boots /vmlinuz and /initrd.img, the links Debian's kernel packages keep
// on the newest kernel (package foundation). A bake that installs a kernel
// or GRUB needs none of Debian's boot-loader commands on such an image,
// and they could not work in the sandbox, which shows no disk: grub-install
// writes to one, update-grub (grub-mkconfig) probes the root's, fails, and
// fails the package that ran it.
//
// So for the bake those commands are deferred, as the service commands are
// short-circuited: a script in the command's place says in the bake log
// what was deferred and why, and exits 0. The place is taken with a dpkg
// diversion (divert.go), because the real commands mostly arrive during
// the bake: grub-pc brings update-grub and runs it from its postinst in
// the same dpkg run. dpkg installs the package's file under the diverted
// name and leaves the script alone. (A script in a directory earlier in
// the PATH would not do: apt runs dpkg with a PATH of its own, without
// /usr/local, and some callers give the full path.)
// The scripts are there whether or not the image has the commands: a
// package written for Debian's cloud images, which have them, calls
// update-grub unconditionally, and would fail with "not found" where
// nothing needs doing. When the chroot closes the scripts go, the
// package's files take their places and the diversions are removed.
// grub.cfg itself is kept: if a package replaced it anyway, aminator's is
// put back, with a warning, so the image boots as its loaders expect.

// grubConfig is GRUB's configuration in the image.
const grubConfig = "boot/grub/grub.cfg"

// commandDir is where Debian's GRUB packages install the commands.
const commandDir = "usr/sbin"

// deferReason is why update-grub and grub-mkconfig are deferred.
const deferReason = "the image's boot loader is aminator's static GRUB config, which follows /vmlinuz"

// installReason is why grub-install is deferred.
const installReason = "aminator installed the image's GRUB (BIOS boot partition, EFI system partition) with the foundation, and the sandbox has no disk to write to"

// deferScripts are the deferring commands, by name.
func deferScripts() map[string]string {
	return map[string]string{
		"grub-install":  deferScript("grub-install", installReason),
		"update-grub":   deferScript("update-grub", deferReason),
		"update-grub2":  deferScript("update-grub2", deferReason),
		"grub-mkconfig": mkconfigScript("/" + commandDir + "/grub-mkconfig" + divertSuffix),
	}
}

const scriptHeader = "#!/bin/sh\n# written by aminator for the bake; removed afterwards\n"

func deferScript(name, why string) string {
	return scriptHeader + fmt.Sprintf("echo \"aminator: deferred %s${*:+ $*}: %s\" >&2\nexit 0\n", name, why)
}

// mkconfigScript defers grub-mkconfig only when it writes /boot/grub/grub.cfg
// (-o, as update-grub runs it); printing a config to standard output, or
// writing one elsewhere, is left to the real command at real.
func mkconfigScript(real string) string {
	return scriptHeader + `out= next=
for a in "$@"; do
	if [ -n "$next" ]; then out=$a next=; continue; fi
	case $a in
	-o|--output) next=1 ;;
	--output=*) out=${a#--output=} ;;
	-o*) out=${a#-o} ;;
	esac
done
if [ -n "$out" ] && [ "$(realpath -m -- "$out")" = /boot/grub/grub.cfg ]; then
	echo "aminator: deferred grub-mkconfig${*:+ $*}: ` + deferReason + `" >&2
	exit 0
fi
if [ -x ` + real + ` ]; then
	exec ` + real + ` "$@"
fi
echo "grub-mkconfig: not installed" >&2
exit 127
`
}

// StaticGRUB says whether a GRUB configuration boots the kernel links
// /vmlinuz and /initrd.img (as aminator's cloud foundation's does), and so
// needs no update-grub when a kernel is installed or removed.
func StaticGRUB(cfg []byte) bool {
	var linux, initrd bool
	s := bufio.NewScanner(bytes.NewReader(cfg))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 {
			continue
		}
		linux = linux || f[0] == "linux" && f[1] == "/vmlinuz"
		initrd = initrd || f[0] == "initrd" && f[1] == "/initrd.img"
	}
	return linux && initrd
}

// staticGRUB reads the image's grub.cfg: a regular file that StaticGRUB.
func staticGRUB(root *os.Root) (bool, error) {
	st, err := root.Lstat(grubConfig)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("/%s: %w", grubConfig, err)
	}
	if !st.Mode().IsRegular() {
		return false, nil
	}
	cfg, err := root.ReadFile(grubConfig)
	if err != nil {
		return false, fmt.Errorf("/%s: %w", grubConfig, err)
	}
	return StaticGRUB(cfg), nil
}

// deferBootLoader defers the boot-loader commands for the bake and keeps
// grub.cfg, when the image boots through a static GRUB config and has
// dpkg's database; on Close it logs which kernel the image boots.
func (d *Distro) deferBootLoader(c *chroot.Chroot) error {
	static, err := staticGRUB(c.Root())
	if err != nil || !static {
		return err
	}
	if _, err := c.Root().Stat(dpkgDiversions); err != nil {
		return nil // not a dpkg system: nothing installs the commands
	}
	scripts := deferScripts()
	var deferred []string
	for _, name := range slices.Sorted(maps.Keys(scripts)) {
		by, err := divert(c, d.log, path.Join(commandDir, name), []byte(scripts[name]))
		if err != nil {
			return fmt.Errorf("defer %s: %w", name, err)
		}
		if by != "" {
			d.log.Info("not deferred: a package diverts it already", "command", name, "package", by)
			continue
		}
		deferred = append(deferred, name)
	}
	if err := c.Keep(grubConfig, "the image's loaders read it: "+deferReason); err != nil {
		return err
	}
	c.AtClose("read the kernel links", func() error { logKernelLinks(c.Root(), d.log); return nil })
	d.log.Info("boot loader commands deferred for the bake", "commands", strings.Join(deferred, " "), "why", deferReason)
	return nil
}

// kernelLinks are what a static grub.cfg boots.
var kernelLinks = []string{"vmlinuz", "initrd.img"}

// logKernelLinks says which kernel the image boots after the bake, and
// warns when a link the static grub.cfg boots leads nowhere (a bake that
// removed every kernel): such an image does not boot, which its boot test
// (--test) will report.
func logKernelLinks(root *os.Root, log *slog.Logger) {
	var attrs []any
	for _, l := range kernelLinks {
		target, err := linkTarget(root, l)
		if err != nil {
			log.Warn("the image will not boot: its GRUB config boots /"+l+", which leads nowhere", "err", err)
			return
		}
		attrs = append(attrs, l, target)
	}
	log.Info("the image boots the kernel its links lead to", attrs...)
}

// linkTarget resolves /name inside the image to a regular file and returns
// the path it leads to; GRUB reads an absolute link from the root too.
func linkTarget(root *os.Root, name string) (string, error) {
	rel := name
	if t, err := root.Readlink(name); err == nil {
		rel = t
		if path.IsAbs(t) {
			rel = strings.TrimPrefix(path.Clean(t), "/")
		}
	}
	st, err := root.Stat(rel)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("/%s is not a regular file", rel)
	}
	return "/" + path.Clean(rel), nil
}
