package pkgdb

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Only installed packages count; removed ones and stray lines do not.
func TestParseDpkgQuery(t *testing.T) {
	m := ParseDpkgQuery([]byte("ii \tbash\t5.2-1\tamd64\nrc \told\t1\tall\n\nbad line\n"))
	if len(m) != 1 || m[0].Name != "bash" || m[0].Version != "5.2-1" || m[0].Arch != "amd64" {
		t.Errorf("manifest %+v", m)
	}
}

// The status file read here lists what dpkg-query itself lists, line for
// line: on this host's database (when it has dpkg), and on a small one
// with the states a bake meets.
func TestReadDpkgStatusIsDpkgQuery(t *testing.T) {
	dpkgQuery, err := exec.LookPath("dpkg-query")
	if err != nil {
		t.Skip("no dpkg-query on this host")
	}
	small := t.TempDir()
	admin := filepath.Join(small, "var", "lib", "dpkg")
	for _, d := range []string{"updates", "info"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status := "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\nDescription: z\n more\n\n" +
		"Package: old\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1.0\n\n" +
		"Package: gone\nStatus: purge ok not-installed\nArchitecture: all\n\n" +
		"Package: half\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 2\n\n" +
		"Package: bash\nStatus: hold ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n"
	if err := os.WriteFile(filepath.Join(admin, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"/", small} {
		if _, err := os.Stat(filepath.Join(root, "var/lib/dpkg/status")); err != nil {
			continue
		}
		want, err := exec.Command(dpkgQuery, "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", DpkgQueryFormat).Output()
		if err != nil {
			t.Fatalf("dpkg-query on %s: %v", root, err)
		}
		got, ok := ReadDpkgStatus(os.DirFS(root))
		if !ok {
			t.Fatalf("%s: not read", root)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\n got %q\nwant %q", root, got, want)
		}
	}

	// A dpkg run that did not finish leaves a journal: only dpkg-query can say.
	if err := os.WriteFile(filepath.Join(admin, "updates", "0001"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := ReadDpkgStatus(os.DirFS(small)); ok {
		t.Error("read despite pending updates")
	}
}
