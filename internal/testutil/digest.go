package testutil

import (
	"crypto/sha256"
	"encoding/hex"
)

// SHA256Hex is b's SHA-256 in lower-case hex.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
