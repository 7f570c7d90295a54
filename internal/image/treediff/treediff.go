// Package treediff compares two file trees as normalised trees: what a
// file is (type), holds (content by SHA-256, a symlink's target, a
// device's number), and carries (mode, owner, extended attributes), never
// when it was touched, its inode or how it is hard-linked. The trees are
// read through os.Root and directory file descriptors only and no symlink
// is ever followed, so an untrusted tree (a mounted image) cannot make the
// walk read outside itself.
package treediff

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Kind is what a difference is.
type Kind string

// The kinds of difference, as diff prints them.
const (
	Added    Kind = "+" // only in B
	Removed  Kind = "-" // only in A
	Modified Kind = "M" // in both, different
)

// The aspects in which a path in both trees can differ.
const (
	Content = "content" // the bytes of a regular file, the number of a device
	Mode    = "mode"    // permission bits with setuid, setgid and sticky
	Owner   = "owner"   // numeric uid and gid
	Xattrs  = "xattrs"  // extended attribute names and values
	Link    = "link"    // a symlink's target
	Type    = "type"    // file, directory, symlink, device, fifo, socket
)

// Diff is one difference: a path (absolute in the tree, "/etc/hosts")
// and, for Modified, the aspects that differ in the order listed above.
type Diff struct {
	Kind    Kind     `json:"kind"`
	Path    string   `json:"path"`
	Changes []string `json:"changes,omitempty"`
}

// String is the line diff prints: "+ /p", "- /p" or "M /p (mode, owner)".
func (d Diff) String() string {
	if d.Kind == Modified {
		return fmt.Sprintf("M %s (%s)", d.Path, strings.Join(d.Changes, ", "))
	}
	return string(d.Kind) + " " + d.Path
}

// Options say what a comparison leaves out and how it hashes.
type Options struct {
	// Ignore are path.Match globs against a path ("/var/log/*"); a
	// directory that matches is left out with everything under it.
	Ignore []string
	// Workers hash file pairs at once (0: 4).
	Workers int
}

// Compare compares the trees at dirs a and b and returns their
// differences in walk order (each directory's entries sorted by name,
// depth first). It stops when ctx is done.
func Compare(ctx context.Context, a, b string, o Options) ([]Diff, error) {
	for _, g := range o.Ignore {
		if _, err := path.Match(g, "/"); err != nil {
			return nil, fmt.Errorf("--ignore %q: %w", g, err)
		}
	}
	ra, err := os.OpenRoot(a)
	if err != nil {
		return nil, fmt.Errorf("tree A: %w", err)
	}
	defer ra.Close()
	rb, err := os.OpenRoot(b)
	if err != nil {
		return nil, fmt.Errorf("tree B: %w", err)
	}
	defer rb.Close()
	w := &walker{ctx: ctx, a: ra, b: rb, o: o}
	if w.ignored("/") {
		return nil, nil
	}
	if err := w.pair("/", ".", nil, nil); err != nil {
		return nil, err
	}
	if err := w.hashPending(); err != nil {
		return nil, err
	}
	out := w.diffs[:0]
	for _, d := range w.diffs {
		if d.Kind != Modified || len(d.Changes) > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// walker holds a comparison in progress.
type walker struct {
	ctx   context.Context
	a, b  *os.Root
	o     Options
	diffs []Diff
	// pending are regular files of equal size whose contents are yet to
	// be hashed: diffs[i] gains Content if they differ.
	pending []pendingHash
}

type pendingHash struct {
	diff int    // index in diffs
	rel  string // the path relative to both roots
}

func (w *walker) ignored(p string) bool {
	for _, g := range w.o.Ignore {
		if ok, _ := path.Match(g, p); ok {
			return true
		}
	}
	return false
}

// pair compares the entry rel (p in the tree) present in both trees, in
// the open directories pa and pb (nil: rel is the root), and, for two
// directories, their entries.
func (w *walker) pair(p, rel string, pa, pb *os.File) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ea, err := stat(w.a, pa, rel)
	if err != nil {
		return fmt.Errorf("tree A: %w", err)
	}
	eb, err := stat(w.b, pb, rel)
	if err != nil {
		return fmt.Errorf("tree B: %w", err)
	}
	changes := compareEntries(ea, eb)
	d := len(w.diffs)
	w.diffs = append(w.diffs, Diff{Kind: Modified, Path: p, Changes: changes})
	if ea.typ == 0 && eb.typ == 0 && ea.size == eb.size && ea.size > 0 { // two regular files
		w.pending = append(w.pending, pendingHash{diff: d, rel: rel})
	}
	dirA, dirB := ea.typ == fs.ModeDir, eb.typ == fs.ModeDir
	if !dirA && !dirB {
		return nil
	}
	var na, nb []string
	var da, db *os.File
	if dirA {
		if da, na, err = openDir(w.a, rel); err != nil {
			return fmt.Errorf("tree A: %w", err)
		}
		defer da.Close()
	}
	if dirB {
		if db, nb, err = openDir(w.b, rel); err != nil {
			return fmt.Errorf("tree B: %w", err)
		}
		defer db.Close()
	}
	return w.merge(p, rel, na, nb, da, db)
}

// merge walks the sorted entry names of a directory in A and in B, open
// as da and db.
func (w *walker) merge(p, rel string, na, nb []string, da, db *os.File) error {
	i, j := 0, 0
	for i < len(na) || j < len(nb) {
		var name string
		var inA, inB bool
		switch {
		case j >= len(nb) || (i < len(na) && na[i] < nb[j]):
			name, inA = na[i], true
			i++
		case i >= len(na) || nb[j] < na[i]:
			name, inB = nb[j], true
			j++
		default:
			name, inA, inB = na[i], true, true
			i++
			j++
		}
		cp, crel := path.Join(p, name), path.Join(rel, name)
		if w.ignored(cp) {
			continue
		}
		var err error
		switch {
		case inA && inB:
			err = w.pair(cp, crel, da, db)
		case inA:
			err = w.only(w.a, Removed, cp, crel)
		default:
			err = w.only(w.b, Added, cp, crel)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// only lists an entry of one tree alone, and everything under it.
func (w *walker) only(r *os.Root, k Kind, p, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.diffs = append(w.diffs, Diff{Kind: k, Path: p})
	fi, err := r.Lstat(rel)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	f, names, err := openDir(r, rel)
	if err != nil {
		return err
	}
	f.Close()
	for _, n := range names {
		cp, crel := path.Join(p, n), path.Join(rel, n)
		if w.ignored(cp) {
			continue
		}
		if err := w.only(r, k, cp, crel); err != nil {
			return err
		}
	}
	return nil
}

// openDir opens a directory and lists its entries, sorted; the caller
// closes it.
func openDir(r *os.Root, rel string) (*os.File, []string, error) {
	f, err := r.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read directory %s: %w", rel, err)
	}
	sort.Strings(names)
	return f, names, nil
}
