package sbom

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

// An rpm database made by rpm itself, in RHEL 9's place and in Fedora's,
// lists what rpm -qa lists, with the License tag and the source package;
// rpm's own key entries are left out.
func TestRPMDatabase(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed")
	}
	pkg := testutil.BuildRPM(t, t.TempDir(), testutil.RPM{Name: "aminator-web", Version: "1.2", Release: "3.el9",
		Files: map[string]string{"/srv/web/index.html": "hello\n"}})
	for _, db := range rpmDBPaths {
		t.Run(filepath.Dir(db), func(t *testing.T) {
			root := tree(t, map[string]string{"etc/os-release": "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.4\"\n"})
			dbpath := "/" + filepath.Dir(db)
			rpm := func(args ...string) string {
				out, err := exec.Command("rpm", append([]string{"--root", root, "--dbpath", dbpath}, args...)...).CombinedOutput()
				if err != nil {
					t.Fatalf("rpm %v: %v\n%s", args, err, out)
				}
				return string(out)
			}
			rpm("--initdb")
			rpm("-i", "--justdb", "--nodeps", "--noscripts", pkg)
			want := strings.Fields(rpm("-qa", "--qf", "%{NAME}|%{VERSION}-%{RELEASE}|%{ARCH}\\n"))
			inv, err := Read(root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range inv.Packages {
				got = append(got, p.Name+"|"+p.Version+"|"+p.Arch)
			}
			if inv.Kind != KindRPM || !slices.Equal(got, want) || len(got) != 1 {
				t.Fatalf("kind %s, packages %q, rpm -qa %q", inv.Kind, got, want)
			}
			p := inv.Packages[0]
			if p.License != "MIT" || p.Source != "aminator-web" || p.SourceVersion != "1.2-3.el9" ||
				p.PURL != "pkg:rpm/redhat/aminator-web@1.2-3.el9?arch=noarch&distro=rhel-9.4" {
				t.Errorf("package %+v", p)
			}
			documents(t, inv, subject("aminator-web"))
			if left, _ := filepath.Glob(filepath.Join(os.TempDir(), "aminator-rpmdb-*")); len(left) > 0 {
				t.Errorf("copies of the database left: %v", left)
			}
		})
	}
}

// The rpm purl keeps the epoch in a qualifier; an image still on
// BerkeleyDB gets a note, not an error.
func TestRPMEpochAndBerkeleyDB(t *testing.T) {
	got := rpmPURL(Distro{ID: "fedora", VersionID: "40"}, "bind", "32:9.18.24-1.fc40", "x86_64")
	if want := "pkg:rpm/fedora/bind@9.18.24-1.fc40?arch=x86_64&distro=fedora-40&epoch=32"; got != want {
		t.Errorf("purl %s, want %s", got, want)
	}
	if n, v := srpmName("glibc-2.34-100.el9.src.rpm"); n != "glibc" || v != "2.34-100.el9" {
		t.Errorf("source %q %q", n, v)
	}
	inv, err := Read(tree(t, map[string]string{rpmBDB: "not read"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kind != KindRPM || len(inv.Packages) != 0 || !strings.Contains(inv.Note, "BerkeleyDB") {
		t.Errorf("inventory %+v", inv)
	}
	documents(t, inv, subject(""))
}
