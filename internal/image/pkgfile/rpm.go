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
	name, ver, rel, arch := h.String(RPMTagName), h.String(RPMTagVersion), h.String(RPMTagRelease), h.String(RPMTagArch)
	switch {
	case !rpmNameRE.MatchString(name):
		return nil, fmt.Errorf("%s names an invalid package %.80q", file, name)
	case !rpmFieldRE.MatchString(ver) || !rpmFieldRE.MatchString(rel):
		return nil, fmt.Errorf("%s: package %s has an invalid version %.80q or release %.80q", file, name, ver, rel)
	case !rpmFieldRE.MatchString(arch):
		return nil, fmt.Errorf("%s: package %s has an invalid architecture %.80q", file, name, arch)
	}
	full := ver + "-" + rel
	if e, ok := h.Int32(RPMTagEpoch); ok && e != 0 {
		full = strconv.FormatUint(uint64(e), 10) + ":" + full
	}
	return &plugin.PackageInfo{Name: name, FullVersion: full, Version: ver, Release: rel, Arch: arch}, nil
}

// rpmHeader skips the lead and the signature header and reads the main header.
func rpmHeader(r io.Reader) (*RPMHeader, error) {
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

// readHeader reads a header that starts with its magic from r.
func readHeader(r io.Reader) (*RPMHeader, error) {
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
	b := make([]byte, 8+16*int(n)+int(size))
	copy(b, intro[8:16])
	if _, err := io.ReadFull(r, b[8:]); err != nil {
		return nil, errors.New("truncated index or data")
	}
	return ParseRPMHeaderBlob(b)
}
