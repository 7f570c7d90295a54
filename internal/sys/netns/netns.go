// Package netns gives a VM and its helpers a private network namespace that
// routes nowhere, with EC2's link-local service addresses on its loopback.
//
// Why a namespace: a guest booted "like EC2" asks 169.254.169.254 for its
// metadata (and 169.254.169.123 for the time). qemu's user networking can
// forward (guestfwd) only addresses inside its own guest subnet, so it cannot
// forward those. Its NAT, though, connects whatever the guest sends to its
// default gateway from qemu's own network namespace. Run qemu in a namespace
// whose loopback carries 169.254.169.254/32, 169.254.169.123/32 and
// fd00:ec2::254/128, listen there (NS.Listen), and the guest reaches the
// metadata service the way it does on EC2, through its gateway. The
// namespace has no other interface and no route, so neither the guest nor
// anything else in it reaches the host's services (its 127.0.0.1 is its
// own) or the network.
//
// A namespace here is held by an open file descriptor only: nothing is
// bind-mounted under /run/netns, so nothing outlives the process. The kernel
// frees the namespace once the descriptor is closed and the last socket and
// process in it are gone.
//
// Threads: a network namespace belongs to an OS thread. New and Do run
// their work on a fresh goroutine locked to its thread and return without
// unlocking it, so the Go runtime discards that thread: no thread of the
// program is ever left in the namespace, and no restore (which could fail)
// is needed. A socket keeps the namespace it was created in, so listeners
// and connections made by Listen and Dial can be used from any goroutine.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The addresses EC2 serves its link-local services on, which the namespace's
// loopback carries.
var (
	IMDSv4     = netip.MustParseAddr("169.254.169.254") // instance metadata
	TimeSyncV4 = netip.MustParseAddr("169.254.169.123") // Amazon Time Sync
	IMDSv6     = netip.MustParseAddr("fd00:ec2::254")   // instance metadata on Nitro
)

// NS is a private network namespace. Its methods are safe for concurrent use.
type NS struct {
	mu sync.RWMutex
	fd int // the namespace's nsfs file; -1 once closed
}

// New creates a namespace whose loopback is up and carries EC2's service
// addresses. It needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root).
func New() (*NS, error) {
	fd := -1
	err := onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare the network namespace: %w", err)
		}
		var err error
		if fd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open the new network namespace: %w", err)
		}
		return setupLoopback()
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("netns: %w", err)
	}
	return &NS{fd: fd}, nil
}

// setupLoopback brings lo up and gives it EC2's service addresses.
func setupLoopback() error {
	if err := linkUp(loopbackIndex); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	for _, a := range []netip.Addr{IMDSv4, TimeSyncV4, IMDSv6} {
		if err := addAddress(loopbackIndex, netip.PrefixFrom(a, a.BitLen())); err != nil {
			return fmt.Errorf("add %s to lo: %w", a, err)
		}
	}
	return nil
}

// Do runs f inside the namespace, on a thread of its own that is discarded
// afterwards; the calling goroutine's thread never changes namespace. Only
// what f does on its own goroutine happens inside: goroutines it starts run
// in the host's namespace. A panic in f is raised again in the caller.
func (n *NS) Do(f func() error) error {
	return onThrowawayThread(func() error {
		if err := n.enter(); err != nil {
			return err
		}
		return f()
	})
}

// enter moves the calling thread into the namespace.
func (n *NS) enter() error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.fd < 0 {
		return errors.New("netns: namespace is closed")
	}
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns: enter the namespace: %w", err)
	}
	return nil
}

// onThrowawayThread runs f on a new goroutine locked to its OS thread and
// never unlocks it: when the goroutine ends, the runtime terminates the
// thread, whatever namespace f left it in. The thread may be one that
// earlier forked a child of this process: a child started with a
// parent-death signal (Pdeathsig) then gets it, since the kernel ties that
// signal to the forking thread. Start such children from a thread of their
// own that outlives them (as boottest does for qemu).
func onThrowawayThread(f func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose (see above)
		defer func() {
			if v := recover(); v != nil {
				done <- result{panicked: true, value: v}
			}
		}()
		done <- result{err: f()}
	}()
	r := <-done
	if r.panicked {
		panic(r.value)
	}
	return r.err
}

// Listen announces on addr inside the namespace (net.Listen's networks).
// The host part of addr must be an IP address or empty: no name is resolved,
// since a resolver would work from other goroutines, outside.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	if err := checkLiteral(addr, true); err != nil {
		return nil, err
	}
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return l, nil
}

// ListenPacket is Listen for packet networks ("udp", "udp4", "udp6"), e.g. a
// time server on 169.254.169.123:123.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	if err := checkLiteral(addr, true); err != nil {
		return nil, err
	}
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return c, nil
}

// Dial connects to addr (an IP address and port) from inside the namespace.
func (n *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := checkLiteral(addr, false); err != nil {
		return nil, err
	}
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return c, nil
}

// checkLiteral refuses an address whose host is a name (or empty, unless
// emptyOK).
func checkLiteral(addr string, emptyOK bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("netns: address %q: %w", addr, err)
	}
	if host == "" && emptyOK {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("netns: address %q: the host must be an IP address, names are not resolved here", addr)
	}
	return nil
}

// Command returns a command that runs name inside the namespace, for the
// caller to set up and start like any exec.Cmd (it is killed when ctx is
// done).
//
// The command is wrapped in nsenter(1) (util-linux, essential in Debian):
// the caller starts the Cmd later, out of this package's reach, and os/exec
// has no hook to join a namespace between fork and exec, while starting it
// from Do would tie its start to a call here. nsenter joins the namespace
// through this process's descriptor (/proc/PID/fd/N, so the command does not
// inherit the descriptor) and then executes name in place: the process the
// Cmd holds is name itself. It has to be started while n is open.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	n.mu.RLock()
	fd := n.fd
	n.mu.RUnlock()
	path := "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(fd)
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--", name}, args...)...)
	if fd < 0 && cmd.Err == nil {
		cmd.Err = errors.New("netns: namespace is closed") // Start returns it
	}
	return cmd
}

// Close releases the namespace. Sockets and processes still inside keep it
// alive until they end; nothing is left once they are gone.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	if err != nil {
		return fmt.Errorf("netns: close: %w", err)
	}
	return nil
}
