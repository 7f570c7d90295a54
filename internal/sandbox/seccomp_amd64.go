package sandbox

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_X86_64

// archDenied are x86-only calls: port I/O reaches the host's hardware.
var archDenied = []uint32{unix.SYS_IOPL, unix.SYS_IOPERM}

// archPrologue refuses the x32 ABI (numbers with bit 30 set), which would
// otherwise reach every call above under another number. A holds nr.
var archPrologue = []unix.SockFilter{
	jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0x40000000, 0, 1),
	stmt(unix.BPF_RET|unix.BPF_K, retEPERM),
}
