package netns

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The two rtnetlink requests the namespace needs, written with x/sys/unix
// rather than a netlink library or ip(8): bring a link up and add an address.
// They act on the calling thread's namespace.

// loopbackIndex is lo's interface index: a new namespace registers its
// loopback first, as index 1.
const loopbackIndex = 1

// linkUp sets IFF_UP on the interface with the given index.
func linkUp(index int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index), Flags: unix.IFF_UP, Change: unix.IFF_UP}
	return request(unix.RTM_NEWLINK, 0, structBytes(&msg, unix.SizeofIfInfomsg))
}

// addAddress adds p to the interface with the given index.
func addAddress(index int, p netip.Prefix) error {
	family := unix.AF_INET6
	if p.Addr().Is4() {
		family = unix.AF_INET
	}
	msg := unix.IfAddrmsg{Family: uint8(family), Prefixlen: uint8(p.Bits()), Scope: unix.RT_SCOPE_UNIVERSE, Index: uint32(index)}
	if family == unix.AF_INET6 {
		// Without NODAD an IPv6 address stays tentative until the kernel's
		// duplicate-address work runs (even on lo), and a listen on it in
		// that window fails with "cannot assign requested address".
		msg.Flags = unix.IFA_F_NODAD
	}
	b := structBytes(&msg, unix.SizeofIfAddrmsg)
	a := p.Addr().AsSlice()
	b = appendAttr(b, unix.IFA_LOCAL, a)
	b = appendAttr(b, unix.IFA_ADDRESS, a)
	return request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b)
}

// request sends one rtnetlink request and waits for the kernel's
// acknowledgement.
func request(typ uint16, flags uint16, payload []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	hdr := unix.NlMsghdr{
		Len:   uint32(unix.SizeofNlMsghdr + len(payload)),
		Type:  typ,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK | flags,
		Seq:   1,
	}
	msg := append(structBytes(&hdr, unix.SizeofNlMsghdr), payload...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	return readAck(fd)
}

// readAck reads the NLMSG_ERROR message that acknowledges a request (error
// 0) or reports its failure.
func readAck(fd int) error {
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("netlink receive: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return fmt.Errorf("netlink reply: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
			continue
		}
		if errno := int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
			return unix.Errno(-errno)
		}
		return nil
	}
	return fmt.Errorf("netlink reply: no acknowledgement in %d messages", len(msgs))
}

// appendAttr appends a route attribute, padded to netlink's alignment.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	attr := unix.RtAttr{Len: uint16(unix.SizeofRtAttr + len(data)), Type: typ}
	b = append(b, structBytes(&attr, unix.SizeofRtAttr)...)
	b = append(b, data...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// structBytes copies a kernel ABI struct's size bytes, in host byte order.
func structBytes[T any](v *T, size int) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), size)...)
}
