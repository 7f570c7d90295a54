package sandbox

import (
	"debug/elf"
	"fmt"
	"os"
	"strings"
)

// selfStatic checks that this program needs no dynamic loader. A download
// sandbox's PID 1 stays behind as the egress forwarder and re-executes
// this program inside the image, after pivot_root (runForwarder): a
// dynamically linked aminate would there be loaded by the image's own
// ld.so and libc, which are the image's to plant, and fails outright in an
// image of another architecture, which has no loader for it.
func selfStatic() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("sandbox: find this program: %w", err)
	}
	interp, err := interpreter(exe)
	if err != nil {
		return fmt.Errorf("sandbox: read %s: %w", exe, err)
	}
	if interp != "" {
		return fmt.Errorf("sandbox: %s is dynamically linked (loader %s): its download sandbox re-executes it inside the image, whose own loader and libc would run it; build it with CGO_ENABLED=0", exe, interp)
	}
	return nil
}

// interpreter is an ELF file's program interpreter, "" for a static one.
func interpreter(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", err
			}
			if s := strings.TrimRight(string(b), "\x00"); s != "" {
				return s, nil
			}
			return "(unnamed)", nil
		}
	}
	return "", nil
}
