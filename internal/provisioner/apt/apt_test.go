package apt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	a := &Apt{}
	dir := t.TempDir()
	deb := filepath.Join(dir, "x_1_all.deb")
	os.WriteFile(deb, []byte("x"), 0o644)
	for _, tc := range []struct {
		in, kind, name, ver, err string
	}{
		{in: "nginx", kind: "repo", name: "nginx"},
		{in: "libc6=2.36-9", kind: "repo", name: "libc6", ver: "2.36-9"},
		{in: "g++", kind: "repo", name: "g++"},
		{in: deb, kind: "file"},
		{in: "file://" + deb, kind: "file"},
		{in: "https://example.invalid/x.deb", kind: "url"},
		{in: "-oDpkg::Pre-Invoke=x", err: "not a valid Debian package name"},
		{in: "Nginx", err: "not a valid"},
		{in: "nginx=; rm -rf /", err: "not a valid Debian version"},
		{in: "./missing.deb", err: "no such file"},
		{in: dir, err: "not a regular file"},
		{in: "http://", err: "not a valid URL"},
		{in: "", err: "no package"},
	} {
		r, err := a.Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.Kind != tc.kind || r.Name != tc.name || r.Version != tc.ver {
			t.Errorf("Parse(%q) = %+v, %v", tc.in, r, err)
		}
		if tc.kind == "file" && r.Path != deb {
			t.Errorf("Parse(%q).Path = %q", tc.in, r.Path)
		}
	}
}
