// Package pkgfile reads which package a .deb or .rpm file holds (name,
// version, release, architecture) without installing it and without running
// any program: a .deb's control file (an ar archive whose control.tar,
// plain or compressed with gzip, xz or zstd, holds ./control) and an .rpm's
// header. A bake reads it before doing any work, so that the image name
// the package makes can be checked first. The files are untrusted input:
// every size is bounded, nothing is written, and the fields are checked.
package pkgfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/aminator-go/aminator/internal/image/naming"
	"github.com/aminator-go/aminator/internal/plugin"
)

// Bounds on what is read from an untrusted file.
const (
	maxControlMember = 64 << 20 // the compressed control.tar
	maxControlTar    = 64 << 20 // the control.tar once decompressed
	maxControlFile   = 1 << 20  // ./control
)

var (
	debNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	debVersionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$`)
	debArchRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Deb reads the package name, version and architecture of a .deb file.
func Deb(file string) (*plugin.PackageInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read package file: %w", err)
	}
	defer f.Close()
	control, err := debControl(f)
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable .deb: %w", file, err)
	}
	fields := ControlFields(control)
	name, full, arch := fields["package"], fields["version"], fields["architecture"]
	switch {
	case !debNameRE.MatchString(name):
		return nil, fmt.Errorf("%s names an invalid package %.80q", file, name)
	case !debVersionRE.MatchString(full):
		return nil, fmt.Errorf("%s: package %s has an invalid version %.80q", file, name, full)
	case !debArchRE.MatchString(arch):
		return nil, fmt.Errorf("%s: package %s has an invalid architecture %.80q", file, name, arch)
	}
	ver, rel := naming.SplitVersion(full)
	return &plugin.PackageInfo{Name: name, FullVersion: full, Version: ver, Release: rel, Arch: arch}, nil
}

// debControl finds control.tar* in the ar archive and returns ./control.
func debControl(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, errors.New("no ar archive header")
	}
	for i := 0; i < 8; i++ { // debian-binary, control.tar*, data.tar*, maybe signatures
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return nil, errors.New("no control.tar member")
		}
		if string(hdr[58:60]) != "`\n" {
			return nil, errors.New("a damaged ar member header")
		}
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("ar member %.16q has a bad size", name)
		}
		if strings.HasPrefix(name, "control.tar") {
			if size > maxControlMember {
				return nil, fmt.Errorf("%s is %d bytes, more than a control member can be", name, size)
			}
			return controlFromTar(name, io.LimitReader(br, size))
		}
		if _, err := io.CopyN(io.Discard, br, size+size%2); err != nil {
			return nil, fmt.Errorf("ar member %s is truncated", name)
		}
	}
	return nil, errors.New("no control.tar member")
}

func controlFromTar(member string, r io.Reader) ([]byte, error) {
	var dr io.Reader
	switch path.Ext(member) {
	case ".tar":
		dr = r
	case ".gz":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", member, err)
		}
		defer z.Close()
		dr = z
	case ".xz":
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", member, err)
		}
		dr = z
	case ".zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxControlTar))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", member, err)
		}
		defer z.Close()
		dr = z
	default:
		return nil, fmt.Errorf("%s: an unknown compression", member)
	}
	tr := tar.NewReader(io.LimitReader(dr, maxControlTar))
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s has no ./control: %w", member, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) != "control" || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > maxControlFile {
			return nil, fmt.Errorf("./control is %d bytes, more than a control file can be", h.Size)
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, io.LimitReader(tr, maxControlFile)); err != nil {
			return nil, fmt.Errorf("%s: ./control: %w", member, err)
		}
		return b.Bytes(), nil
	}
}

// ControlFields reads the fields of the first paragraph of Debian control
// data (a .deb's control file, apt-cache show's output), keyed in lower
// case; continuation lines are dropped (the fields read here have none).
func ControlFields(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			break // the end of the first paragraph
		}
		if line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := out[k]; !dup {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}
