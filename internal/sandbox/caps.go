package sandbox

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Keep are the capabilities package code keeps: what dpkg, rpm and
// maintainer scripts use, and none that reaches past the image.
var Keep = []int{
	unix.CAP_CHOWN,            // dpkg/rpm give files their owners
	unix.CAP_DAC_OVERRIDE,     // root writes files whatever their mode
	unix.CAP_DAC_READ_SEARCH,  // ... and reads them (ldconfig, find in postinsts)
	unix.CAP_FOWNER,           // chmod/utime of files root does not own
	unix.CAP_FSETID,           // setuid/setgid bits survive chown (sudo, passwd)
	unix.CAP_KILL,             // signals, only to processes in the sandbox's PID namespace
	unix.CAP_SETGID,           // apt drops to _apt, scripts run su/runuser
	unix.CAP_SETUID,           // ditto
	unix.CAP_SETPCAP,          // lets a program drop capabilities (apt's sandbox)
	unix.CAP_SETFCAP,          // dpkg/rpm set file capabilities (ping, gst-ptp-helper)
	unix.CAP_NET_BIND_SERVICE, // a test server on a low port on the sandbox's loopback
	unix.CAP_AUDIT_WRITE,      // PAM (su, runuser) writes audit records
}

// Left out on purpose: sys_admin (mount, namespaces, everything),
// sys_chroot (the classic chroot breakout), mknod (block devices of the
// host's disks or other bakes' loop devices), sys_module, sys_rawio
// (/proc/kcore, ioperm), sys_ptrace, net_admin and net_raw (the network
// namespace's routes and raw packets), syslog, sys_time, sys_boot,
// sys_resource, sys_nice, ipc_lock, ipc_owner, linux_immutable, lease,
// mac_*, audit_control, bpf, perfmon, checkpoint_restore, block_suspend,
// wake_alarm.

// dropCapabilities drops everything but Keep from the bounding set (so
// that no execve, setuid binary or file capability can give them back),
// clears the ambient set, and sets the effective, permitted and
// inheritable sets to Keep. The caller's thread is the one that execs.
func dropCapabilities() error {
	keep := map[int]bool{}
	var set [2]uint32
	for _, c := range Keep {
		keep[c] = true
		set[c/32] |= 1 << (c % 32)
	}
	for c := 0; ; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) && c > 0 {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{}
	for i := range data {
		data[i] = unix.CapUserData{Effective: set[i], Permitted: set[i], Inheritable: set[i]}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
