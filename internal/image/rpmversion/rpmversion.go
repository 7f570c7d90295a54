// Package rpmversion compares RPM package versions ([epoch:]version[-release])
// the way rpm does: rpmvercmp on each part, as rpm.vercmp and dnf order
// packages. debversion is its Debian counterpart.
package rpmversion

import "strings"

// evr is a version split into its parts; a missing part is nil, which
// orders before any present one (so 1.0-1 is newer than 1.0).
type evr struct {
	epoch, version, release *string
}

// parse splits s as rpm does: the epoch is the leading digits before a
// ':' ("0" when they are empty), the release what follows the last '-'
// after those digits.
func parse(s string) evr {
	var v evr
	d := 0
	for d < len(s) && isDigit(s[d]) {
		d++
	}
	start := 0
	if d < len(s) && s[d] == ':' {
		e := s[:d]
		if e == "" {
			e = "0"
		}
		v.epoch, start = &e, d+1
	}
	end := len(s)
	if i := strings.LastIndexByte(s[d:], '-'); i >= 0 {
		end = d + i
		r := s[end+1:]
		v.release = &r
	}
	ver := s[start:end]
	v.version = &ver
	return v
}

// Compare returns -1, 0 or 1 as a is older than, equal to or newer than b:
// the epochs (a missing one is 0), then the versions, then the releases,
// each with Vercmp.
func Compare(a, b string) int {
	va, vb := parse(a), parse(b)
	zero := "0"
	if va.epoch == nil {
		va.epoch = &zero
	}
	if vb.epoch == nil {
		vb.epoch = &zero
	}
	for _, p := range [][2]*string{{va.epoch, vb.epoch}, {va.version, vb.version}, {va.release, vb.release}} {
		if c := comparePart(p[0], p[1]); c != 0 {
			return c
		}
	}
	return 0
}

func comparePart(a, b *string) int {
	switch {
	case a == nil && b == nil:
		return 0
	case b == nil:
		return 1
	case a == nil:
		return -1
	}
	return Vercmp(*a, *b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// skipSeparators drops the leading bytes rpmvercmp ignores between
// segments: anything but ASCII letters and digits, '~' and '^'.
func skipSeparators(s string) string {
	i := 0
	for i < len(s) && !isDigit(s[i]) && !isAlpha(s[i]) && s[i] != '~' && s[i] != '^' {
		i++
	}
	return s[i:]
}

// Vercmp is rpm's rpmvercmp on one part (a version or a release): runs of
// digits compare as numbers, runs of letters as strings, a number is newer
// than letters, '~' sorts before anything (even the end: 1.0~rc1 < 1.0)
// and '^' after the end but before anything else (1.0 < 1.0^git1 < 1.0.1).
func Vercmp(a, b string) int {
	if a == b {
		return 0
	}
	for a != "" || b != "" {
		a, b = skipSeparators(a), skipSeparators(b)
		ta, tb := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~")
		if ta || tb {
			if !ta {
				return 1
			}
			if !tb {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		ca, cb := strings.HasPrefix(a, "^"), strings.HasPrefix(b, "^")
		if ca || cb {
			switch {
			case a == "":
				return -1
			case b == "":
				return 1
			case !ca:
				return 1
			case !cb:
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			break
		}
		var c int
		if c, a, b = segment(a, b); c != 0 {
			return c
		}
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

// segment compares the leading run of digits (or, if a starts with a
// letter, of letters) of a and b, and returns the rest of both.
func segment(a, b string) (c int, restA, restB string) {
	numeric := isDigit(a[0])
	class := isAlpha
	if numeric {
		class = isDigit
	}
	sa, sb := run(a, class), run(b, class)
	a, b = a[len(sa):], b[len(sb):]
	if sb == "" { // different kinds: a number is newer than letters
		if numeric {
			return 1, a, b
		}
		return -1, a, b
	}
	if numeric {
		sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
		if len(sa) != len(sb) {
			if len(sa) > len(sb) {
				return 1, a, b
			}
			return -1, a, b
		}
	}
	return strings.Compare(sa, sb), a, b
}

func run(s string, class func(byte) bool) string {
	i := 0
	for i < len(s) && class(s[i]) {
		i++
	}
	return s[:i]
}
