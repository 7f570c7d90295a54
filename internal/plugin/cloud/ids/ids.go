// Package ids makes cloud-style resource ids: a prefix and 17 hex digits,
// as EC2 uses (ami-0123456789abcdef0).
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
)

// New returns prefix + "-" + 17 random hex digits.
func New(prefix string) string {
	var b [9]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on Linux
	}
	return prefix + "-" + hex.EncodeToString(b[:])[:17]
}

var idRE = regexp.MustCompile(`^(ami|snap|vol)-[0-9a-f]{8,17}$`)

// Valid reports whether s looks like an id with the given prefix.
func Valid(prefix, s string) bool {
	m := idRE.FindStringSubmatch(s)
	return m != nil && m[1] == prefix
}
