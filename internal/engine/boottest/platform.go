package boottest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aminator-go/aminator/internal/sys/binfmt"
)

// platform is how qemu makes a machine of one architecture look like an
// EC2 instance of it: x86_64 as a Nitro instance (q35, SeaBIOS or OVMF),
// arm64 as a Graviton one (the virt machine with a GICv3, UEFI only, by
// Debian's AAVMF build of the same firmware).
type platform struct {
	arch string
	// qemu is the system emulator and pkg Debian's package with it.
	qemu, pkg string
	// machine is -machine's value for a launch like EC2's; kernelMachine
	// for a direct kernel boot ("": qemu's default).
	machine, kernelMachine string
	// tcgCPU is -cpu's value under TCG ("": qemu's default).
	tcgCPU string
	// serial is the guest's name of the VM's first serial port, which
	// -serial stdio reads.
	serial string
	// instanceType is what SMBIOS and the metadata say the VM is.
	instanceType string
	// firmware names the UEFI firmware, for messages.
	firmware string
	// uefiOnly: the architecture boots through UEFI only.
	uefiOnly bool
}

// The UEFI firmware: OVMF for x86_64 (Debian's ovmf), AAVMF for arm64
// (Debian's qemu-efi-aarch64): its code, read only, and a template of its
// variable store, which each VM gets a copy of.
const (
	ovmf       = "/usr/share/ovmf/OVMF.fd"
	aavmfCode  = "/usr/share/AAVMF/AAVMF_CODE.fd"
	aavmfVars  = "/usr/share/AAVMF/AAVMF_VARS.fd"
	aavmfPkg   = "qemu-efi-aarch64"
	graviton   = "t4g.micro"
	nitroX8664 = "t3.micro"
)

// tcgCPUArm64 is the CPU an arm64 guest gets under TCG: a Cortex-A72,
// the core of the first Graviton (a1 instances), Armv8.0. Measured here
// (BENCHMARKS.md, Issue 20), it reached the ssh login sooner than a
// Neoverse N1 (Graviton2, Armv8.2) and qemu's "max" with its cheaper
// pointer authentication (pauth-impdef=on): the fewer architecture
// features the kernel turns on (pointer authentication on every signed
// return, PAN toggled on every user access, ...), the less TCG emulates.
const tcgCPUArm64 = "cortex-a72"

var platforms = map[string]platform{
	"x86_64": {arch: "x86_64", qemu: "qemu-system-x86_64", pkg: "qemu-system-x86", machine: "q35",
		serial: "ttyS0", instanceType: nitroX8664, firmware: "OVMF"},
	"arm64": {arch: "arm64", qemu: "qemu-system-aarch64", pkg: "qemu-system-arm", machine: "virt,gic-version=3", kernelMachine: "virt,gic-version=3",
		tcgCPU: tcgCPUArm64, serial: "ttyAMA0", instanceType: graviton, firmware: "AAVMF", uefiOnly: true},
}

// platformOf is the platform of an image's architecture.
func platformOf(arch string) (platform, error) {
	p, ok := platforms[arch]
	if !ok {
		return platform{}, fmt.Errorf("boot test: no emulator for architecture %q", arch)
	}
	return p, nil
}

// native says KVM could run the guest: it runs only the host's own
// architecture.
func (p platform) native() bool { return p.arch == binfmt.Host() }

// uefiArgs are qemu's arguments for the UEFI firmware; an arm64 VM gets a
// copy of AAVMF's variable store in work (the firmware writes its boot
// entries there).
func (p platform) uefiArgs(work string) ([]string, error) {
	if p.arch != "arm64" {
		if _, err := os.Stat(ovmf); err != nil {
			return nil, fmt.Errorf("boot test in uefi mode needs UEFI firmware (%s; Debian: apt-get install ovmf): %w", ovmf, err)
		}
		return []string{"-bios", ovmf}, nil
	}
	for _, f := range []string{aavmfCode, aavmfVars} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("boot test of an arm64 image needs UEFI firmware (%s; Debian: apt-get install %s): %w", f, aavmfPkg, err)
		}
	}
	vars := filepath.Join(work, "AAVMF_VARS.fd")
	if err := copyFile(aavmfVars, vars); err != nil {
		return nil, fmt.Errorf("boot test: the firmware's variable store: %w", err)
	}
	return []string{"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + aavmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars}, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// firmwareName names the firmware of a boot mode, for messages.
func (p platform) firmwareName(mode string) string {
	if mode == "uefi" {
		return "the UEFI firmware (" + p.firmware + ")"
	}
	return "the BIOS (SeaBIOS)"
}

// CPUEnv, when set, is the CPU model an arm64 guest gets under TCG
// instead of tcgCPUArm64: for comparing models (test/bench's
// BenchmarkArm64), not a setting.
const CPUEnv = "AMINATOR_TCG_CPU_ARM64"

// tcgArgs are the accelerator's arguments under TCG.
func (p platform) tcgArgs() []string {
	cpu := p.tcgCPU
	if v := os.Getenv(CPUEnv); v != "" && p.arch == "arm64" {
		cpu = v
	}
	if cpu == "" {
		return []string{"-accel", "tcg"}
	}
	return []string{"-accel", "tcg", "-cpu", cpu}
}
