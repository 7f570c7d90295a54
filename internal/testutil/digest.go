package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/aminator-go/aminator/internal/image/diskdigest"
)

// SHA256Hex is b's SHA-256 in lower-case hex.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DiskDigest is the disk digest (package diskdigest) of the first size
// bytes of file, or of the whole file when size is negative.
func DiskDigest(t testing.TB, file string, size int64) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size < 0 {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		size = st.Size()
	}
	d, err := diskdigest.OfFile(context.Background(), f, size)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
