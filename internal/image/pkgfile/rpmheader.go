package pkgfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// RPM header tags aminator reads (rpm's lib/rpmtag.h).
const (
	RPMTagName      = 1000
	RPMTagVersion   = 1001
	RPMTagRelease   = 1002
	RPMTagEpoch     = 1003
	RPMTagLicense   = 1014
	RPMTagArch      = 1022
	RPMTagSourceRPM = 1044
)

const (
	typeInt32  = 4
	typeString = 6

	maxIndex = 0xffff   // rpm refuses headers with more tags
	maxStore = 64 << 20 // and bigger data stores
)

// RPMHeader is an rpm header: its tags' index and its data store.
type RPMHeader struct {
	index map[uint32][3]uint32 // tag -> type, offset, count
	store []byte
}

// ParseRPMHeaderBlob parses a header as rpm's database keeps it (and as it
// follows the magic in a package file): the index length, the data
// length, the index and the data, all of it untrusted.
func ParseRPMHeaderBlob(b []byte) (*RPMHeader, error) {
	if len(b) < 8 {
		return nil, errors.New("truncated")
	}
	n, size := binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
	if n > maxIndex || size > maxStore || uint64(len(b)) < 8+16*uint64(n)+uint64(size) {
		return nil, fmt.Errorf("%d tags in %d bytes do not fit a %d-byte header", n, size, len(b))
	}
	h := &RPMHeader{index: make(map[uint32][3]uint32, n), store: b[8+16*n : 8+16*n+size]}
	for i := uint32(0); i < n; i++ {
		e := b[8+16*i:]
		h.index[binary.BigEndian.Uint32(e[0:4])] = [3]uint32{binary.BigEndian.Uint32(e[4:8]),
			binary.BigEndian.Uint32(e[8:12]), binary.BigEndian.Uint32(e[12:16])}
	}
	return h, nil
}

// String is a STRING tag's value, "" when absent or malformed.
func (h *RPMHeader) String(tag uint32) string {
	e, ok := h.index[tag]
	if !ok || e[0] != typeString || e[1] >= uint32(len(h.store)) {
		return ""
	}
	s := h.store[e[1]:]
	end := bytes.IndexByte(s, 0)
	if end < 0 {
		return ""
	}
	return string(s[:end])
}

// Int32 is an INT32 tag's first value.
func (h *RPMHeader) Int32(tag uint32) (uint32, bool) {
	e, ok := h.index[tag]
	if !ok || e[0] != typeInt32 || e[2] < 1 || uint64(e[1])+4 > uint64(len(h.store)) {
		return 0, false
	}
	return binary.BigEndian.Uint32(h.store[e[1]:]), true
}
