package pkgdb

import "testing"

// Only installed packages count; removed ones and stray lines do not.
func TestParseDpkgQuery(t *testing.T) {
	m := ParseDpkgQuery([]byte("ii \tbash\t5.2-1\tamd64\nrc \told\t1\tall\n\nbad line\n"))
	if len(m) != 1 || m[0].Name != "bash" || m[0].Version != "5.2-1" || m[0].Arch != "amd64" {
		t.Errorf("manifest %+v", m)
	}
}
