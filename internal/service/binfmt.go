package service

import (
	"errors"
	"fmt"

	"github.com/aminator-go/aminator/internal/sys/binfmt"
)

// Emulation is how this host runs one foreign architecture's programs,
// as RegisterEmulators found or made it.
type Emulation struct {
	Arch string `json:"arch"`
	// Handler is the binfmt_misc handler that runs them, Interpreter its
	// emulator and Flags its flags.
	Handler     string `json:"handler"`
	Interpreter string `json:"interpreter"`
	Flags       string `json:"flags"`
	// Registered says RegisterEmulators registered it (false: it was
	// registered already).
	Registered bool `json:"registered"`
}

// Emulators is what RegisterEmulators did.
type Emulators struct {
	Dir string `json:"dir"`
	// Mounted says binfmt_misc was not mounted at Dir, and now is.
	Mounted bool        `json:"mounted"`
	Archs   []Emulation `json:"archs"`
}

// RegisterEmulators makes sure this host runs the programs of every
// architecture aminator bakes for that it does not run natively, so
// that bakes on their bases can run a package's scripts: it mounts
// binfmt_misc at dir if it is not, and registers the host's static
// qemu-user emulator (Debian's qemu-user-static) with the F flag for
// each architecture no usable handler runs yet. Run again, it finds them
// and changes nothing.
func RegisterEmulators(dir string) (*Emulators, error) {
	if dir == "" {
		dir = binfmt.Dir
	}
	out := &Emulators{Dir: dir, Archs: []Emulation{}}
	var err error
	if out.Mounted, err = binfmt.Mount(dir); err != nil {
		return out, err
	}
	for _, arch := range binfmt.Foreign() {
		e := Emulation{Arch: arch}
		h, err := binfmt.Find(dir, arch)
		if errors.Is(err, binfmt.ErrNoHandler) {
			emulator, eerr := binfmt.Emulator(arch)
			if eerr != nil {
				return out, fmt.Errorf("%s: %w (%w)", arch, eerr, err)
			}
			if err = binfmt.Register(dir, arch, emulator); err == nil {
				e.Registered = true
				h, err = binfmt.Find(dir, arch)
			}
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", arch, err)
		}
		e.Handler, e.Interpreter, e.Flags = h.Name, h.Interpreter, h.Flags
		out.Archs = append(out.Archs, e)
	}
	return out, nil
}
