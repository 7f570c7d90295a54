package attest

import (
	"context"
	"fmt"
	"strings"

	"github.com/aminator-go/aminator/internal/image/debversion"
	"github.com/aminator-go/aminator/internal/image/rpmversion"
	"github.com/aminator-go/aminator/internal/image/sbom"
)

// Query asks which images carry a package, in a range of versions.
type Query struct {
	// Name is the package's name, as its package database has it.
	Name  string
	conds []cond // all must hold; none: any version
	text  string
}

// String is the query as it was written.
func (q Query) String() string { return q.text }

// cond is one comparison: op and version, or (op "=") an upstream-version
// prefix by components.
type cond struct {
	op      string // =, <, <=, >, >=
	version string
	prefix  []string // "3.0.x": 3, 0
	epoch   string   // the prefix's epoch, "" for any
}

const querySyntax = "PACKAGE, PACKAGE=VERSION, PACKAGE=3.0.x (or 3.0.*), or PACKAGE>=3.0,<3.1 (>=, <=, >, <, =; a comma joins them)"

// ParseQuery reads a query: NAME (any version), NAME=VERSION (that exact
// version), NAME=3.0.x or NAME=3.0.* (an upstream version starting with
// those components, any epoch unless one is given), or comparisons
// joined by commas, all of which must hold (NAME>=3.0,<3.1).
func ParseQuery(s string) (Query, error) {
	q := Query{text: s}
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=<>!~, ")
	if i < 0 {
		i = len(s)
	}
	q.Name = s[:i]
	if err := checkName(q.Name); err != nil {
		return Query{}, fmt.Errorf("query %q: %w; give %s", q.text, err, querySyntax)
	}
	if i == len(s) {
		return q, nil
	}
	for part := range strings.SplitSeq(s[i:], ",") {
		c, err := parseCond(strings.TrimSpace(part))
		if err != nil {
			return Query{}, fmt.Errorf("query %q: %w; give %s", q.text, err, querySyntax)
		}
		q.conds = append(q.conds, c)
	}
	return q, nil
}

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("no package name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && strings.IndexByte("+-._", c) < 0 {
			return fmt.Errorf("package name %q: %q is not allowed (letters, digits, '+', '-', '.', '_')", name, c)
		}
	}
	return nil
}

func parseCond(s string) (cond, error) {
	var c cond
	for _, op := range []string{">=", "<=", "==", "=", ">", "<"} {
		if strings.HasPrefix(s, op) {
			c.op, c.version = strings.TrimPrefix(op, "="), strings.TrimSpace(s[len(op):])
			if op == "==" || op == "=" {
				c.op = "="
			}
			break
		}
	}
	switch {
	case s == "":
		return c, fmt.Errorf("an empty comparison")
	case c.op == "":
		return c, fmt.Errorf("%q: no operator", s)
	case c.version == "":
		return c, fmt.Errorf("%q: no version after %s", s, c.op)
	}
	for i := 0; i < len(c.version); i++ {
		if ch := c.version[i]; !isAlnum(ch) && strings.IndexByte(".+~:^_-*", ch) < 0 {
			return c, fmt.Errorf("version %q: %q is not allowed", c.version, ch)
		}
	}
	base, wild := strings.CutSuffix(c.version, ".x")
	if !wild {
		base, wild = strings.CutSuffix(c.version, ".*")
	}
	switch {
	case wild && c.op != "=":
		return c, fmt.Errorf("%q: a wildcard version (%s) goes with = only", s, c.version)
	case strings.Contains(base, "*") || base == "":
		return c, fmt.Errorf("version %q: '*' (or .x) only as the last component, after at least one", c.version)
	case wild:
		c.epoch, c.prefix = splitPrefix(base)
	}
	return c, nil
}

// splitPrefix is a wildcard's epoch ("" when not given) and components.
func splitPrefix(base string) (string, []string) {
	var epoch string
	if e, rest, ok := strings.Cut(base, ":"); ok {
		epoch, base = e, rest
	}
	return epoch, strings.Split(base, ".")
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Matches reports whether version, in the order of kind's package
// manager, satisfies every comparison of q.
func (q Query) Matches(kind sbom.Kind, version string) bool {
	cmp := debversion.Compare
	if kind == sbom.KindRPM {
		cmp = rpmversion.Compare
	}
	for _, c := range q.conds {
		if c.prefix != nil {
			if !prefixMatch(c, version) {
				return false
			}
			continue
		}
		r := cmp(version, c.version)
		ok := map[string]bool{"=": r == 0, "<": r < 0, "<=": r <= 0, ">": r > 0, ">=": r >= 0}[c.op]
		if !ok {
			return false
		}
	}
	return true
}

// prefixMatch reports whether version's upstream part (without epoch and
// revision or release) starts with c's components: "3.0.x" holds for 3.0,
// 3.0.11 and 3.0.2~rc1, not 3.01 or 3.1.
func prefixMatch(c cond, version string) bool {
	epoch, up := "0", version
	if e, rest, ok := strings.Cut(version, ":"); ok {
		epoch, up = e, rest
	}
	if c.epoch != "" && strings.TrimLeft(c.epoch, "0") != strings.TrimLeft(epoch, "0") {
		return false
	}
	if i := strings.LastIndexByte(up, '-'); i >= 0 {
		up = up[:i]
	}
	comps := strings.Split(up, ".")
	if len(comps) < len(c.prefix) {
		return false
	}
	for i, p := range c.prefix {
		if !componentMatch(comps[i], p) {
			return false
		}
	}
	return true
}

// componentMatch: v is p, or p followed by a character of another class
// (digits, letters, the rest): "0" holds for "0~rc1", "1" for "1w", not
// for "10".
func componentMatch(v, p string) bool {
	if !strings.HasPrefix(v, p) {
		return false
	}
	return len(v) == len(p) || class(p[len(p)-1]) != class(v[len(p)])
}

func class(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return 1
	}
	return 2
}

// Match is one package of one image that a query selected.
type Match struct {
	ImageID string `json:"image"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Has lists the packages, of every image in the store, that q selects,
// sorted by image, architecture and version: the name is looked up in the
// index, and each version compared in its image's order.
func (s *Store) Has(ctx context.Context, q Query) ([]Match, error) {
	if q.Name == "" {
		return nil, fmt.Errorf("query: no package name")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT i.id, p.arch, p.version, i.pkgkind FROM pkgs p
		JOIN image_pkgs ip ON ip.pkg = p.n JOIN images i ON i.n = ip.image
		WHERE p.name = ? ORDER BY i.id, p.arch, p.version`, q.Name)
	if err != nil {
		return nil, fmt.Errorf("attestation index: query %s: %w", q, err)
	}
	defer rows.Close()
	var out []Match
	for rows.Next() {
		m := Match{Name: q.Name}
		var kind string
		if err := rows.Scan(&m.ImageID, &m.Arch, &m.Version, &kind); err != nil {
			return nil, fmt.Errorf("attestation index: query %s: %w", q, err)
		}
		if q.Matches(sbom.Kind(kind), m.Version) {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}
