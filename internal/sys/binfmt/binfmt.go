// Package binfmt says whether this host runs another architecture's
// binaries, and registers an emulator for them when asked.
//
// A bake of a foreign image runs the package's maintainer scripts inside
// the sandbox, after pivot_root into the image: the kernel can start a
// foreign ELF there only through a binfmt_misc handler registered with
// the F ("fix binary") flag, which opens the emulator when it is
// registered instead of looking it up in the image at each exec. Check
// finds such a handler by matching the handlers' magic and mask against
// an ELF header of the architecture, as the kernel does; Register writes
// one for a static qemu-user emulator (Debian's qemu-user-static).
package binfmt

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is where the kernel's binfmt_misc is mounted.
const Dir = "/proc/sys/fs/binfmt_misc"

// ErrNoHandler is wrapped by Check's error when no usable handler is
// registered.
var ErrNoHandler = errors.New("no binfmt_misc handler")

// machines are the ELF machine of each architecture aminator names.
var machines = map[string]elf.Machine{"x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "i386": elf.EM_386}

// qemuNames are qemu-user's name for each architecture.
var qemuNames = map[string]string{"x86_64": "x86_64", "arm64": "aarch64", "i386": "i386"}

// Host is the architecture this process runs on, in aminator's names.
func Host() string {
	return map[string]string{"amd64": "x86_64", "arm64": "arm64", "386": "i386"}[runtime.GOARCH]
}

// Native reports whether this host runs arch's binaries without an
// emulator (x86_64 runs i386 too).
func Native(arch string) bool {
	h := Host()
	return arch == h || (h == "x86_64" && arch == "i386")
}

// Handler is one registered binfmt_misc entry.
type Handler struct {
	Name        string
	Enabled     bool
	Interpreter string
	Flags       string
	Offset      int
	Magic, Mask []byte
}

// FixBinary reports whether the handler has the F flag.
func (h Handler) FixBinary() bool { return strings.Contains(h.Flags, "F") }

// matches reports whether the handler takes a file starting with header.
func (h Handler) matches(header []byte) bool {
	if h.Offset+len(h.Magic) > len(header) {
		return false
	}
	for i, m := range h.Magic {
		mask := byte(0xff)
		if i < len(h.Mask) {
			mask = h.Mask[i]
		}
		if header[h.Offset+i]&mask != m&mask {
			return false
		}
	}
	return true
}

// Handlers reads every magic handler registered in dir (Dir, or a
// stand-in in tests). A dir that is not mounted has none.
func Handlers(dir string) ([]Handler, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []Handler
	for _, e := range entries {
		if n := e.Name(); n == "register" || n == "status" || e.IsDir() {
			continue
		}
		h, err := readHandler(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if h.Magic != nil {
			out = append(out, h)
		}
	}
	return out, nil
}

func readHandler(path string) (Handler, error) {
	h := Handler{Name: filepath.Base(path)}
	b, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("read binfmt handler: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "enabled":
			h.Enabled = true
		case "interpreter":
			h.Interpreter = val
		case "flags:":
			h.Flags = val
		case "offset":
			fmt.Sscan(val, &h.Offset)
		case "magic":
			h.Magic, _ = hex.DecodeString(val)
		case "mask":
			h.Mask, _ = hex.DecodeString(val)
		}
	}
	return h, nil
}

// elfHeaders are the first bytes of an executable and of a shared object
// (a PIE) of arch, little-endian 64- or 32-bit as the architecture is.
func elfHeaders(arch string) [][]byte {
	m, ok := machines[arch]
	if !ok {
		return nil
	}
	class := byte(elf.ELFCLASS64)
	if arch == "i386" {
		class = byte(elf.ELFCLASS32)
	}
	var out [][]byte
	for _, typ := range []elf.Type{elf.ET_EXEC, elf.ET_DYN} {
		h := make([]byte, 20)
		copy(h, []byte{0x7f, 'E', 'L', 'F', class, byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
		h[16], h[17] = byte(typ), byte(typ>>8)
		h[18], h[19] = byte(m), byte(m>>8)
		out = append(out, h)
	}
	return out
}

// Find is the handler in dir that runs arch's executables and shared
// objects alike, or an error that says why none does.
func Find(dir, arch string) (Handler, error) {
	heads := elfHeaders(arch)
	if heads == nil {
		return Handler{}, fmt.Errorf("architecture %q: want x86_64, arm64 or i386", arch)
	}
	hs, err := Handlers(dir)
	if err != nil {
		return Handler{}, err
	}
	var found []Handler
	for _, h := range hs {
		all := true
		for _, head := range heads {
			all = all && h.matches(head)
		}
		if all {
			found = append(found, h)
		}
	}
	for _, h := range found {
		if h.Enabled && h.FixBinary() {
			return h, nil
		}
	}
	for _, h := range found {
		if !h.Enabled {
			return h, fmt.Errorf("%w for %s: %s (%s) is disabled", ErrNoHandler, arch, filepath.Join(dir, h.Name), h.Interpreter)
		}
		return h, fmt.Errorf("%w for %s with the F flag: %s (%s, flags %q) looks its emulator up in the image at each start, which is not there inside the bake's sandbox",
			ErrNoHandler, arch, filepath.Join(dir, h.Name), h.Interpreter, h.Flags)
	}
	if _, err := os.Stat(filepath.Join(dir, "register")); err != nil {
		return Handler{}, fmt.Errorf("%w for %s: binfmt_misc is not mounted at %s", ErrNoHandler, arch, dir)
	}
	return Handler{}, fmt.Errorf("%w for %s in %s", ErrNoHandler, arch, dir)
}

// Check returns nil when this host runs arch's binaries: natively, or
// through a handler in dir registered with the F flag. Its error says
// how to fix it.
func Check(dir, arch string) error {
	if Native(arch) {
		return nil
	}
	if _, err := Find(dir, arch); err != nil {
		return fmt.Errorf("%s binaries cannot run on this %s host, so neither can the package's scripts in a %s image: %w\n"+
			"  fix: install Debian's qemu-user-static and binfmt-support (apt-get install qemu-user-static binfmt-support), "+
			"which register qemu-%s with the F flag, or let aminator register it: aminate init --binfmt",
			arch, Host(), arch, err, qemuNames[arch])
	}
	return nil
}

// Emulator finds a static qemu-user emulator for arch on this host: a
// handler with the F flag opens it in the host's tree once, so it must
// need no loader or library from the image it later runs in.
func Emulator(arch string) (string, error) {
	q, ok := qemuNames[arch]
	if !ok {
		return "", fmt.Errorf("architecture %q: want x86_64, arm64 or i386", arch)
	}
	for _, name := range []string{"qemu-" + q + "-static", "qemu-" + q} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if static, err := isStatic(p); err == nil && static {
			return p, nil
		}
	}
	return "", fmt.Errorf("no static qemu-%s emulator on this host (install Debian's qemu-user-static)", q)
}

// isStatic reports whether an ELF file has no program interpreter.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// Register registers emulator for arch's executables in dir with the F
// and C flags (C: set-uid programs in the image keep their credentials),
// mounting binfmt_misc there first if it is not. It does nothing when a
// usable handler is there already.
func Register(dir, arch, emulator string) error {
	if _, err := Find(dir, arch); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "register")); err != nil {
		if err := unix.Mount("binfmt_misc", dir, "binfmt_misc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount binfmt_misc at %s: %w", dir, err)
		}
	}
	heads := elfHeaders(arch)
	magic, mask := heads[0], make([]byte, len(heads[0]))
	for i := range mask {
		mask[i] = 0xff
	}
	// Any OS ABI; e_type EXEC (2) and DYN (3) differ in the low bit only.
	mask[7], mask[16] = 0, 0xfe
	name := "aminator-qemu-" + qemuNames[arch]
	line := fmt.Sprintf(":%s:M::%s:%s:%s:FC", name, escape(magic), escape(mask), emulator)
	if err := os.WriteFile(filepath.Join(dir, "register"), []byte(line), 0); err != nil {
		if _, ferr := Find(dir, arch); errors.Is(err, unix.EEXIST) && ferr == nil {
			return nil // another process registered it meanwhile
		}
		return fmt.Errorf("register %s for %s in %s: %w", emulator, arch, dir, err)
	}
	if _, err := Find(dir, arch); err != nil {
		return fmt.Errorf("registered %s for %s, yet: %w", emulator, arch, err)
	}
	return nil
}

// escape writes bytes as binfmt_misc's \xHH escapes.
func escape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "\\x%02x", c)
	}
	return s.String()
}
