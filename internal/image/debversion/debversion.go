// Package debversion compares Debian package versions
// ([epoch:]upstream[-revision]) the way dpkg does.
package debversion

import (
	"strconv"
	"strings"
)

type version struct {
	epoch              int
	upstream, revision string
}

func parse(s string) version {
	var v version
	if i := strings.IndexByte(s, ':'); i >= 0 {
		v.epoch, _ = strconv.Atoi(s[:i])
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.upstream, v.revision = s[:i], s[i+1:]
	} else {
		v.upstream = s
	}
	return v
}

// Compare returns -1, 0 or 1 as a is older than, equal to or newer than b.
func Compare(a, b string) int {
	va, vb := parse(a), parse(b)
	if va.epoch != vb.epoch {
		if va.epoch < vb.epoch {
			return -1
		}
		return 1
	}
	if c := part(va.upstream, vb.upstream); c != 0 {
		return c
	}
	return part(va.revision, vb.revision)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// order ranks a character in the non-digit parts: ~ before everything,
// then the end, then letters, then the rest.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case isDigit(c):
		return 0
	case c == 0:
		return 0
	case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		return int(c)
	default:
		return int(c) + 256
	}
}

func part(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			var ca, cb byte
			if i < len(a) {
				ca = a[i]
			}
			if j < len(b) {
				cb = b[j]
			}
			oa, ob := order(ca), order(cb)
			if i < len(a) && isDigit(ca) {
				oa = 0
			}
			if j < len(b) && isDigit(cb) {
				ob = 0
			}
			if oa != ob {
				if oa < ob {
					return -1
				}
				return 1
			}
			if i < len(a) && !isDigit(ca) {
				i++
			}
			if j < len(b) && !isDigit(cb) {
				j++
			}
			if (i >= len(a) || isDigit(a[i])) && (j >= len(b) || isDigit(b[j])) {
				break
			}
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		si, sj := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		da, db := a[si:i], b[sj:j]
		if len(da) != len(db) {
			if len(da) < len(db) {
				return -1
			}
			return 1
		}
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}
