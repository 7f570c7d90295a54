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

func TestParseManifest(t *testing.T) {
	m := ParseManifest([]byte("ii \tbash\t5.2-1\tamd64\nrc \told\t1\tall\n\nbad line\n"))
	if len(m) != 1 || m[0].Name != "bash" || m[0].Version != "5.2-1" || m[0].Arch != "amd64" {
		t.Errorf("manifest %+v", m)
	}
}
