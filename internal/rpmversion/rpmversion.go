// Package rpmversion compares RPM package versions
// ([epoch:]version[-release]) the way rpm does: rpmvercmp on the version
// and then the release, after the epoch (missing is 0). It is the RPM
// counterpart of package debversion.
package rpmversion

import "strings"

// evr is a version split into epoch, version and release.
type evr struct {
	epoch, version, release string
	hasRelease              bool
}

// parse splits "E:V-R" as rpm does: the epoch is the digits before a
// ':', the release what follows the last '-'.
func parse(s string) evr {
	var v evr
	if i := strings.IndexByte(s, ':'); i >= 0 && allDigits(s[:i]) {
		v.epoch, s = s[:i], s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.version, v.release, v.hasRelease = s[:i], s[i+1:], true
	} else {
		v.version = s
	}
	if v.epoch == "" {
		v.epoch = "0"
	}
	return v
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// Compare returns -1, 0 or 1 as a is older than, equal to or newer than
// b. The releases count only when both versions have one, as in rpm.
func Compare(a, b string) int {
	va, vb := parse(a), parse(b)
	if c := Vercmp(va.epoch, vb.epoch); c != 0 {
		return c
	}
	if c := Vercmp(va.version, vb.version); c != 0 {
		return c
	}
	if va.hasRelease && vb.hasRelease {
		return Vercmp(va.release, vb.release)
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// separator says whether c only separates segments.
func separator(c byte) bool { return !isDigit(c) && !isAlpha(c) && c != '~' && c != '^' }

// Vercmp is rpm's rpmvercmp on one version or release string: runs of
// digits compare as numbers and beat letters, runs of letters compare
// as strings, other characters only separate; '~' sorts before anything
// (even the end), '^' after the end but before anything else.
func Vercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && separator(a[i]) {
			i++
		}
		for j < len(b) && separator(b[j]) {
			j++
		}
		if c, ok := tilde(a, b, &i, &j); ok {
			if c != 0 {
				return c
			}
			continue
		}
		if c, ok := caret(a, b, &i, &j); ok {
			if c != 0 {
				return c
			}
			continue
		}
		if i >= len(a) || j >= len(b) {
			break
		}
		if c := segment(a, b, &i, &j); c != 0 {
			return c
		}
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i >= len(a):
		return -1
	default:
		return 1
	}
}

func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// tilde handles a '~' at either position: it sorts before everything.
func tilde(a, b string, i, j *int) (int, bool) {
	ca, cb := at(a, *i), at(b, *j)
	if ca != '~' && cb != '~' {
		return 0, false
	}
	if ca != '~' {
		return 1, true
	}
	if cb != '~' {
		return -1, true
	}
	*i, *j = *i+1, *j+1
	return 0, true
}

// caret handles a '^' at either position: like '~', except that a
// version that has ended sorts before it.
func caret(a, b string, i, j *int) (int, bool) {
	ca, cb := at(a, *i), at(b, *j)
	if ca != '^' && cb != '^' {
		return 0, false
	}
	switch {
	case ca == 0:
		return -1, true
	case cb == 0:
		return 1, true
	case ca != '^':
		return 1, true
	case cb != '^':
		return -1, true
	}
	*i, *j = *i+1, *j+1
	return 0, true
}

// segment compares the run of digits or of letters at a[i] with the one
// at b[j] and moves both past it.
func segment(a, b string, i, j *int) int {
	class := isAlpha
	num := isDigit(a[*i])
	if num {
		class = isDigit
	}
	si, sj := *i, *j
	for *i < len(a) && class(a[*i]) {
		*i++
	}
	for *j < len(b) && class(b[*j]) {
		*j++
	}
	sa, sb := a[si:*i], b[sj:*j]
	if sb == "" { // different kinds: a number beats letters
		if num {
			return 1
		}
		return -1
	}
	if num {
		sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
		if len(sa) != len(sb) {
			if len(sa) > len(sb) {
				return 1
			}
			return -1
		}
	}
	return strings.Compare(sa, sb)
}
