package yum

import (
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	b := &Backend{}
	for _, tc := range []struct{ in, err string }{
		{in: "nginx"},
		{in: "python3.11-libs"},
		{in: "aminator-rpmrepo-3.1"},
		{in: "gcc-c++"},
		{in: "-y", err: "not a valid RPM package name"},
		{in: "a b", err: "not a valid"},
		{in: "x;rm", err: "not a valid"},
	} {
		name, ver, err := b.ParseName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseName(%q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.in || ver != "" {
			t.Errorf("ParseName(%q) = %q, %q, %v", tc.in, name, ver, err)
		}
	}
}
