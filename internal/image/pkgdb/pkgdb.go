// Package pkgdb reads an image's list of installed packages in the forms
// the package managers print it, so that the provisioners (inside a
// chroot) and the foundation builder (on a tree from the host) share one
// format and one parser instead of one importing the other. It also reads
// dpkg's status file itself, in that same form (ReadDpkgStatus), so that a
// bake need not start a command in the image only to list its packages.
package pkgdb

import (
	"io/fs"
	"sort"
	"strings"

	"github.com/aminator-go/aminator/internal/plugin"
)

// DpkgQueryFormat is the dpkg-query -f format ParseDpkgQuery reads: status
// abbreviation, name, version and architecture, tab-separated.
const DpkgQueryFormat = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"

// ParseDpkgQuery reads dpkg-query lines in DpkgQueryFormat, keeping the
// installed packages (status "ii").
func ParseDpkgQuery(out []byte) []plugin.Package {
	var pkgs []plugin.Package
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || strings.TrimSpace(f[0]) != "ii" {
			continue
		}
		pkgs = append(pkgs, plugin.Package{Name: f[1], Version: f[2], Arch: f[3]})
	}
	return pkgs
}

// dpkgAdmin is dpkg's database directory, relative to an image's root.
const dpkgAdmin = "var/lib/dpkg"

// wantAbbrev, statusAbbrev and eflagAbbrev are dpkg's one-letter forms of
// a Status field's three words, as ${db:Status-Abbrev} prints them.
var (
	wantAbbrev   = map[string]string{"unknown": "u", "install": "i", "hold": "h", "deinstall": "r", "purge": "p"}
	statusAbbrev = map[string]string{"not-installed": "n", "config-files": "c", "half-installed": "H", "unpacked": "U",
		"half-configured": "F", "triggers-awaited": "W", "triggers-pending": "t", "installed": "i"}
	eflagAbbrev = map[string]string{"ok": " ", "reinstreq": "R"}
)

// ReadDpkgStatus is what `dpkg-query -W -f DpkgQueryFormat` prints for the
// image whose root is root, read from dpkg's status file without running
// anything: every package not in the not-installed state, sorted by name
// and architecture. ok is false when only dpkg-query can tell: a dpkg run
// left updates not yet merged into the status file, a field is missing or
// unknown, or the file cannot be read.
func ReadDpkgStatus(root fs.FS) (out []byte, ok bool) {
	if ents, err := fs.ReadDir(root, dpkgAdmin+"/updates"); err != nil || hasJournal(ents) {
		return nil, false
	}
	b, err := fs.ReadFile(root, dpkgAdmin+"/status")
	if err != nil {
		return nil, false
	}
	var rows [][4]string
	for _, stanza := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		f := fields(stanza)
		if len(f) == 0 {
			continue
		}
		st := strings.Fields(f["status"])
		if len(st) != 3 || f["package"] == "" {
			return nil, false
		}
		w, e, s := wantAbbrev[st[0]], eflagAbbrev[st[1]], statusAbbrev[st[2]]
		if w == "" || e == "" || s == "" {
			return nil, false
		}
		if st[2] == "not-installed" {
			continue
		}
		rows = append(rows, [4]string{w + s + e, f["package"], f["version"], f["architecture"]})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i][1] != rows[j][1] {
			return rows[i][1] < rows[j][1]
		}
		return rows[i][3] < rows[j][3]
	})
	var sb strings.Builder
	for _, r := range rows {
		sb.WriteString(strings.Join(r[:], "\t") + "\n")
	}
	return []byte(sb.String()), true
}

// hasJournal reports whether dpkg's updates directory holds a journal
// entry (a file named by digits), which dpkg-query would apply.
func hasJournal(ents []fs.DirEntry) bool {
	for _, e := range ents {
		if n := e.Name(); n != "" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	return false
}

// fields are a stanza's single-line fields, by lower-case name.
func fields(stanza string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(stanza, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return f
}
