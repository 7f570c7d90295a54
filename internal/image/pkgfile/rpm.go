package pkgfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"github.com/aminator-go/aminator/internal/plugin"
)

// RPM header tags and types (rpm's lib/rpmtag.h).
const (
	tagName    = 1000
	tagVersion = 1001
	tagRelease = 1002
	tagEpoch   = 1003
	tagArch    = 1022

	typeInt32  = 4
	typeString = 6

	maxIndex = 0xffff   // rpm refuses headers with more tags
	maxStore = 64 << 20 // and bigger data stores
)

var (
	rpmNameRE  = regexp.MustCompile(`^[A-Za-z0-9_+][A-Za-z0-9._+-]*$`)
	rpmFieldRE = regexp.MustCompile(`^[A-Za-z0-9._+~^]+$`)
)

// RPM reads the package name, epoch, version, release and architecture of
// an .rpm file from its header.
func RPM(file string) (*plugin.PackageInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read package file: %w", err)
	}
	defer f.Close()
	h, err := rpmHeader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable .rpm: %w", file, err)
	}
	name, ver, rel, arch := h.str(tagName), h.str(tagVersion), h.str(tagRelease), h.str(tagArch)
	switch {
	case !rpmNameRE.MatchString(name):
		return nil, fmt.Errorf("%s names an invalid package %.80q", file, name)
	case !rpmFieldRE.MatchString(ver) || !rpmFieldRE.MatchString(rel):
		return nil, fmt.Errorf("%s: package %s has an invalid version %.80q or release %.80q", file, name, ver, rel)
	case !rpmFieldRE.MatchString(arch):
		return nil, fmt.Errorf("%s: package %s has an invalid architecture %.80q", file, name, arch)
	}
	full := ver + "-" + rel
	if e, ok := h.int32(tagEpoch); ok && e != 0 {
		full = strconv.FormatUint(uint64(e), 10) + ":" + full
	}
	return &plugin.PackageInfo{Name: name, FullVersion: full, Version: ver, Release: rel, Arch: arch}, nil
}

type header struct {
	index map[uint32][3]uint32 // tag -> type, offset, count
	store []byte
}

// rpmHeader skips the lead and the signature header and reads the main header.
func rpmHeader(r io.Reader) (*header, error) {
	lead := make([]byte, 96)
	if _, err := io.ReadFull(r, lead); err != nil || !bytes.Equal(lead[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		return nil, errors.New("no rpm lead")
	}
	sig, err := readHeader(r)
	if err != nil {
		return nil, fmt.Errorf("signature header: %w", err)
	}
	if pad := (8 - len(sig.store)%8) % 8; pad > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(pad)); err != nil {
			return nil, errors.New("truncated after the signature header")
		}
	}
	h, err := readHeader(r)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return h, nil
}

func readHeader(r io.Reader) (*header, error) {
	intro := make([]byte, 16)
	if _, err := io.ReadFull(r, intro); err != nil {
		return nil, errors.New("truncated")
	}
	if !bytes.Equal(intro[:3], []byte{0x8e, 0xad, 0xe8}) {
		return nil, errors.New("bad magic")
	}
	n, size := binary.BigEndian.Uint32(intro[8:12]), binary.BigEndian.Uint32(intro[12:16])
	if n > maxIndex || size > maxStore {
		return nil, fmt.Errorf("%d tags in %d bytes: too big", n, size)
	}
	idx := make([]byte, 16*int(n))
	if _, err := io.ReadFull(r, idx); err != nil {
		return nil, errors.New("truncated index")
	}
	h := &header{index: map[uint32][3]uint32{}, store: make([]byte, size)}
	if _, err := io.ReadFull(r, h.store); err != nil {
		return nil, errors.New("truncated data")
	}
	for i := 0; i < int(n); i++ {
		e := idx[16*i:]
		tag := binary.BigEndian.Uint32(e[0:4])
		h.index[tag] = [3]uint32{binary.BigEndian.Uint32(e[4:8]), binary.BigEndian.Uint32(e[8:12]), binary.BigEndian.Uint32(e[12:16])}
	}
	return h, nil
}

// str is a STRING tag's value, "" when absent or malformed.
func (h *header) str(tag uint32) string {
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

// int32 is an INT32 tag's first value.
func (h *header) int32(tag uint32) (uint32, bool) {
	e, ok := h.index[tag]
	if !ok || e[0] != typeInt32 || e[2] < 1 || uint64(e[1])+4 > uint64(len(h.store)) {
		return 0, false
	}
	return binary.BigEndian.Uint32(h.store[e[1]:]), true
}
