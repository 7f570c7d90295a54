package sbom

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // rpm's database is SQLite (pure Go driver, no cgo)
)

// rpmDBPaths are where rpm keeps its SQLite database: RHEL 9's place, and
// Fedora's since 36 (where /var/lib/rpm is a symlink to it).
var rpmDBPaths = []string{"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"}

// rpmBDB is the BerkeleyDB database of RHEL 8 and older, which Read does
// not read.
const rpmBDB = "var/lib/rpm/Packages"

// RPM header tags (rpm's lib/rpmtag.h) and the types read here.
const (
	tagName      = 1000
	tagVersion   = 1001
	tagRelease   = 1002
	tagEpoch     = 1003
	tagLicense   = 1014
	tagArch      = 1022
	tagSourceRPM = 1044

	typeInt32  = 4
	typeString = 6

	maxIndex = 0xffff   // rpm refuses headers with more tags
	maxStore = 64 << 20 // and bigger data stores
)

// rpmDB is the image's rpm SQLite database, "" when it has none.
func rpmDB(root *os.Root) string {
	for _, p := range rpmDBPaths {
		if present(root, p) {
			return p
		}
	}
	return ""
}

// readRPM reads every header in rpm's database. SQLite opens files by
// path, so the database (and its write-ahead log, which holds committed
// transactions not yet merged) is first copied out through the os.Root
// into a private directory.
func readRPM(root *os.Root, db string, d Distro) ([]Package, error) {
	tmp, err := os.MkdirTemp("", "aminator-rpmdb-")
	if err != nil {
		return nil, fmt.Errorf("rpm database: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, suffix := range []string{"", "-wal"} {
		err := copyOut(root, db+suffix, filepath.Join(tmp, "rpmdb.sqlite"+suffix))
		if err != nil && (suffix == "" || !errors.Is(err, os.ErrNotExist)) {
			return nil, fmt.Errorf("copy rpm database %s: %w", db+suffix, err)
		}
	}
	blobs, err := rpmBlobs(filepath.Join(tmp, "rpmdb.sqlite"))
	if err != nil {
		return nil, fmt.Errorf("rpm database %s: %w", db, err)
	}
	var pkgs []Package
	for i, b := range blobs {
		h, err := parseBlob(b)
		if err != nil {
			return nil, fmt.Errorf("rpm database %s: header %d: %w", db, i, err)
		}
		if p, ok := rpmPackage(h, d); ok {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}

// copyOut copies the image's file name to the host file dst.
func copyOut(root *os.Root, name, dst string) error {
	in, err := root.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// rpmBlobs are the header blobs of rpm's Packages table.
func rpmBlobs(file string) ([][]byte, error) {
	db, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), "SELECT blob FROM Packages ORDER BY hnum")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var blobs [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		blobs = append(blobs, b)
	}
	return blobs, rows.Err()
}

// rpmPackage is the Package a header describes; not ok for rpm's
// gpg-pubkey entries, which are imported keys, not software.
func rpmPackage(h *header, d Distro) (Package, bool) {
	name, arch := h.str(tagName), h.str(tagArch)
	if name == "" || name == "gpg-pubkey" {
		return Package{}, false
	}
	version := h.str(tagVersion) + "-" + h.str(tagRelease)
	if e, ok := h.int32(tagEpoch); ok {
		version = strconv.FormatUint(uint64(e), 10) + ":" + version
	}
	src, srcVer := srpmName(h.str(tagSourceRPM))
	return Package{Name: name, Version: version, Arch: arch, Source: src, SourceVersion: srcVer,
		License: rpmLicense(h.str(tagLicense)), PURL: rpmPURL(d, name, version, arch)}, true
}

// srpmName splits a SOURCERPM file name, NAME-VERSION-RELEASE.src.rpm,
// into the source package's name and VERSION-RELEASE.
func srpmName(file string) (string, string) {
	base := strings.TrimSuffix(strings.TrimSuffix(path.Base(file), ".rpm"), ".src")
	i := strings.LastIndex(base, "-")
	if i <= 0 {
		return base, ""
	}
	j := strings.LastIndex(base[:i], "-")
	if j <= 0 {
		return base, ""
	}
	return base[:j], base[j+1:]
}

// header is an rpm header as the database keeps it: no magic, then the
// index length, the data length, the index and the data.
type header struct {
	index map[uint32][3]uint32 // tag -> type, offset, count
	store []byte
}

func parseBlob(b []byte) (*header, error) {
	if len(b) < 8 {
		return nil, errors.New("truncated")
	}
	n, size := binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
	if n > maxIndex || size > maxStore || uint64(len(b)) < 8+16*uint64(n)+uint64(size) {
		return nil, fmt.Errorf("%d tags in %d bytes do not fit a %d-byte blob", n, size, len(b))
	}
	h := &header{index: make(map[uint32][3]uint32, n), store: b[8+16*n : 8+16*n+size]}
	for i := uint32(0); i < n; i++ {
		e := b[8+16*i:]
		h.index[binary.BigEndian.Uint32(e[0:4])] = [3]uint32{binary.BigEndian.Uint32(e[4:8]),
			binary.BigEndian.Uint32(e[8:12]), binary.BigEndian.Uint32(e[12:16])}
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
