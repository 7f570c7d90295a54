package apt

import (
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	b := &Backend{}
	for _, tc := range []struct {
		in, name, ver, err string
	}{
		{in: "nginx", name: "nginx"},
		{in: "libc6=2.36-9", name: "libc6", ver: "2.36-9"},
		{in: "g++", name: "g++"},
		{in: "-oDpkg::Pre-Invoke=x", err: "not a valid Debian package name"},
		{in: "Nginx", err: "not a valid"},
		{in: "x", err: "at least two characters"},
		{in: "nginx=; rm -rf /", err: "not a valid Debian version"},
	} {
		name, ver, err := b.ParseName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseName(%q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || ver != tc.ver {
			t.Errorf("ParseName(%q) = %q, %q, %v", tc.in, name, ver, err)
		}
	}
}
