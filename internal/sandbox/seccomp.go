package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// denied are the system calls no package install needs, refused with
// EPERM (a script that tries one sees an ordinary error). Most also need a
// capability the sandbox has dropped; the filter is the second lock.
var denied = append([]uint32{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, // the mount tree is fixed
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK, // the new mount API
	unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_MOUNT_SETATTR,
	unix.SYS_CHROOT,                               // the classic breakout needs a second chroot
	unix.SYS_SETNS,                                // no joining other namespaces
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, // replacing the host's kernel
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE, // kernel modules
	unix.SYS_BPF,                                            // kernel programs
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY, // keyrings are not namespaced
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, // other processes' memory
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT, // file handles bypass the mount tree (shocker)
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_REBOOT, unix.SYS_ACCT,
	unix.SYS_PERF_EVENT_OPEN, // kernel and other processes' profiling
	unix.SYS_USERFAULTFD,     // a classic kernel-exploit primitive
	unix.SYS_SYSLOG,          // the host's kernel log
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_LOOKUP_DCOOKIE, unix.SYS_QUOTACTL, unix.SYS_VHANGUP,
	// io_uring runs operations the filter never sees, and has been a
	// steady source of kernel bugs; no package manager uses it.
	unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
}, archDenied...)

// nsFlags are the clone/unshare flags that make namespaces: refused, so
// package code can make no namespace of its own (new user namespaces are
// how most container escapes start).
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWCGROUP

const (
	retAllow = unix.SECCOMP_RET_ALLOW
	retEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	// clone3 passes its flags in memory seccomp cannot read: ENOSYS makes
	// glibc fall back to clone, whose flags the filter sees (as docker does).
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	retKill   = unix.SECCOMP_RET_KILL_PROCESS
	// offsets in struct seccomp_data
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] (little-endian)
	offArg1 = 24
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// argCheck refuses syscall nr when args[arg] (its low 32 bits) has any
// bit of mask set (jset) or equals mask (jeq), and allows it otherwise.
func argCheck(nr uint32, off uint32, op uint16, mask uint32) []unix.SockFilter {
	return []unix.SockFilter{
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, 0, 4),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off),
		jump(unix.BPF_JMP|op|unix.BPF_K, mask, 0, 1),
		stmt(unix.BPF_RET|unix.BPF_K, retEPERM),
		stmt(unix.BPF_RET|unix.BPF_K, retAllow),
	}
}

// program is the filter: a foreign architecture's calls (whose numbers
// mean other things) kill the process; the denied calls fail with EPERM;
// clone and unshare fail with namespace flags; ioctl TIOCSTI (pushing
// input into the terminal of an -i shell's caller) fails; all else runs.
func program() []unix.SockFilter {
	p := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, auditArch, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, retKill),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
	}
	p = append(p, archPrologue...)
	for _, nr := range denied {
		p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, nr, 0, 1), stmt(unix.BPF_RET|unix.BPF_K, retEPERM))
	}
	p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_CLONE3, 0, 1), stmt(unix.BPF_RET|unix.BPF_K, retENOSYS))
	p = append(p, argCheck(unix.SYS_CLONE, offArg0, unix.BPF_JSET, nsFlags)...)
	p = append(p, argCheck(unix.SYS_UNSHARE, offArg0, unix.BPF_JSET, nsFlags)...)
	p = append(p, argCheck(unix.SYS_IOCTL, offArg1, unix.BPF_JEQ, unix.TIOCSTI)...)
	return append(p, stmt(unix.BPF_RET|unix.BPF_K, retAllow))
}

// installSeccomp sets no_new_privs (nothing exec'd can gain privileges, and
// an unprivileged filter is allowed) and installs the filter on this
// thread, the one that execs.
func installSeccomp() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	p := program()
	prog := unix.SockFprog{Len: uint16(len(p)), Filter: &p[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("install the seccomp filter: %w", errno)
	}
	return nil
}
