package boot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reproEpoch is the reproducible foundations' SOURCE_DATE_EPOCH
// (2023-11-14 22:13:20 UTC): any time before the build will do.
const reproEpoch = "1700000000"

// reproducibleFoundation builds a second foundation with f's inputs and a
// third with another epoch, and compares their raw disks with f's: the
// second is the same bytes, the third is not. The same inputs include the
// same package versions, which this test does not pin: the three builds
// use the same mirror within minutes of each other, so they install the
// same versions (a mirror that changes between them would make the second
// differ, and the packages tag and the seed in the log would say so).
// The epoch comes from the environment for the second (SOURCE_DATE_EPOCH,
// the convention the flag defaults to) and from the flag for the others.
func reproducibleFoundation(t *testing.T, c *cloud, f string) {
	again := mustOK(t, c.AminateEnv(t, []string{"SOURCE_DATE_EPOCH=" + reproEpoch}, "foundation", "-n", "debian-bookworm", "-s", "f2"))
	other := mustOK(t, c.Aminate(t, "foundation", "-n", "debian-bookworm", "-s", "f3", "--source-date-epoch", "1700086400"))
	dir := t.TempDir()
	disks := map[string]string{}
	for name, id := range map[string]string{"f1": f, "f2": again, "f3": other} {
		disks[name] = filepath.Join(dir, name+".raw")
		mustOK(t, c.Aminate(t, "images", "export", "--format", "raw", id, disks[name]))
	}
	if got := c.ShowImage(t, again).Tags["source_date_epoch"]; got != reproEpoch {
		t.Errorf("source_date_epoch tag %q, want %s", got, reproEpoch)
	}
	if diff := diffFiles(t, disks["f1"], disks["f2"]); diff != "" {
		t.Errorf("two foundations of the same inputs differ: %s", diff)
	}
	if diff := diffFiles(t, disks["f1"], disks["f3"]); diff == "" {
		t.Error("foundations with different epochs are the same disk")
	}
}

// diffFiles compares two files and says where they differ ("": nowhere):
// the number of differing bytes and the first few offsets.
func diffFiles(t *testing.T, a, b string) string {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 4<<20), make([]byte, 4<<20)
	var off int64
	var n int
	var first []string
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb {
			return fmt.Sprintf("sizes differ (at %d)", off+int64(min(na, nb)))
		}
		if !bytes.Equal(ba[:na], bb[:nb]) {
			for i := range na {
				if ba[i] != bb[i] {
					if n++; len(first) < 10 {
						first = append(first, fmt.Sprintf("%#x", off+int64(i)))
					}
				}
			}
		}
		off += int64(na)
		if ea != nil || eb != nil {
			break
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d bytes, first at %s", n, strings.Join(first, " "))
}
