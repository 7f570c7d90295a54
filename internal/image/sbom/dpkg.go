package sbom

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// dpkg's database, relative to an image's root.
const (
	dpkgStatus  = "var/lib/dpkg/status"
	dpkgUpdates = "var/lib/dpkg/updates"
	debDocs     = "usr/share/doc"
)

// debRecord is one package's stanza from dpkg's status file.
type debRecord struct {
	name, version, arch, status, source string
}

// readDpkg reads dpkg's status file, applies the updates journal on top as
// dpkg itself would, and keeps the packages whose files are on the disk.
func readDpkg(root *os.Root, d Distro, known map[string]string) ([]Package, error) {
	fsys := root.FS()
	b, err := fs.ReadFile(fsys, dpkgStatus)
	if err != nil {
		return nil, fmt.Errorf("read dpkg status file: %w", err)
	}
	recs := map[[2]string]debRecord{}
	if err := applyStanzas(recs, string(b), dpkgStatus); err != nil {
		return nil, err
	}
	if err := applyJournal(fsys, recs); err != nil {
		return nil, err
	}
	var docs fs.FS // opened once: each open through a root walks every component
	if dr, err := root.OpenRoot(debDocs); err == nil {
		defer dr.Close()
		docs = dr.FS()
	}
	var buf bytes.Buffer
	var pkgs []Package
	for _, r := range recs {
		if !onDisk(r.status) {
			continue
		}
		src, srcVer := debSource(r)
		purl := debPURL(d, r.name, r.version, r.arch)
		lic, ok := known[purl]
		if !ok {
			lic = debLicense(docs, r.name, &buf)
		}
		pkgs = append(pkgs, Package{Name: r.name, Version: r.version, Arch: r.arch,
			Source: src, SourceVersion: srcVer, License: lic, PURL: purl})
	}
	return pkgs, nil
}

// applyJournal applies dpkg's updates journal: files named by digits, in
// order, each holding whole stanzas that replace the status file's.
func applyJournal(fsys fs.FS, recs map[[2]string]debRecord) error {
	ents, err := fs.ReadDir(fsys, dpkgUpdates)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no journal
	}
	if err != nil {
		return fmt.Errorf("read dpkg journal: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); n != "" && strings.Trim(n, "0123456789") == "" {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		return len(names[i]) < len(names[j]) || len(names[i]) == len(names[j]) && names[i] < names[j]
	})
	for _, n := range names {
		name := dpkgUpdates + "/" + n
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("read dpkg journal entry: %w", err)
		}
		if err := applyStanzas(recs, string(b), name); err != nil {
			return err
		}
	}
	return nil
}

// applyStanzas puts each stanza of text into recs by package and
// architecture, replacing what was there.
func applyStanzas(recs map[[2]string]debRecord, text, file string) error {
	for _, stanza := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		f := debFields(stanza)
		if len(f) == 0 {
			continue
		}
		r := debRecord{name: f["package"], version: f["version"], arch: f["architecture"], status: f["status"], source: f["source"]}
		if r.name == "" || len(strings.Fields(r.status)) != 3 {
			return fmt.Errorf("%s: a stanza without a package name or a three-word status: %.80q", file, stanza)
		}
		recs[[2]string{r.name, r.arch}] = r
	}
	return nil
}

// onDisk reports whether a package in this dpkg status ("want flag state")
// has its files on the disk: every state but not-installed and
// config-files (removed, only its configuration files left).
func onDisk(status string) bool {
	st := strings.Fields(status)
	return len(st) == 3 && st[2] != "not-installed" && st[2] != "config-files"
}

// debSource is the source package's name and version: the Source field
// ("NAME" or "NAME (VERSION)"), else the binary package's own.
func debSource(r debRecord) (string, string) {
	if r.source == "" {
		return r.name, r.version
	}
	name, rest, ok := strings.Cut(r.source, " ")
	if !ok {
		return name, r.version
	}
	return name, strings.Trim(strings.TrimSpace(rest), "()")
}
