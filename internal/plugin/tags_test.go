package plugin

import (
	"strings"
	"testing"
)

// EC2 counts characters, not bytes; keys starting with aws: (any case)
// are the cloud's.
func TestTagLimits(t *testing.T) {
	l := EC2TagLimits
	for _, ok := range [][2]string{{"k", strings.Repeat("é", 256)}, {strings.Repeat("k", 128), ""}, {"awsx", "v"}} {
		if err := l.CheckTag(ok[0], ok[1]); err != nil {
			t.Errorf("%.20q: %v", ok[0], err)
		}
	}
	for _, bad := range [][2]string{{"k", strings.Repeat("é", 257)}, {strings.Repeat("k", 129), ""}, {"AWS:x", "v"}, {"", "v"}, {"k", "\xff"}} {
		if err := l.CheckTag(bad[0], bad[1]); err == nil {
			t.Errorf("%.20q=%.20q accepted", bad[0], bad[1])
		}
	}
}
