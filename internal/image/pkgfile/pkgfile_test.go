package pkgfile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/testutil"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, x := range tools {
		if _, err := exec.LookPath(x); err != nil {
			t.Skipf("%s is not installed", x)
		}
	}
}

// Every compression dpkg-deb writes a control member with.
func TestDeb(t *testing.T) {
	need(t, "dpkg-deb")
	dir := t.TempDir()
	gz := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-info", Version: "1:2.5-3"})
	info, err := Deb(gz)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "aminator-info" || info.FullVersion != "1:2.5-3" || info.Version != "2.5" || info.Release != "3" || info.Arch != "all" {
		t.Errorf("gzip: %+v", info)
	}
	root := filepath.Join(dir, "aminator-info-1:2.5-3-root")
	for _, z := range []string{"xz", "zstd", "none"} {
		out := filepath.Join(dir, z+".deb")
		if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+z, "--build", root, out).CombinedOutput(); err != nil {
			if z == "zstd" {
				t.Logf("this dpkg-deb cannot write zstd: %s", b)
				continue
			}
			t.Fatalf("dpkg-deb -Z%s: %v %s", z, err, b)
		}
		info, err := Deb(out)
		if err != nil || info.Name != "aminator-info" || info.FullVersion != "1:2.5-3" {
			t.Errorf("%s: %+v %v", z, info, err)
		}
	}
	plain := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-norel", Version: "0.1"})
	if info, err := Deb(plain); err != nil || info.Version != "0.1" || info.Release != "0" {
		t.Errorf("no release: %+v %v", info, err)
	}
}

func TestRPM(t *testing.T) {
	need(t, "rpmbuild")
	p := testutil.BuildRPM(t, t.TempDir(), testutil.RPM{Name: "aminator-rpminfo", Version: "1.0", Release: "2", Files: map[string]string{"/opt/x": "x\n"}})
	info, err := RPM(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "aminator-rpminfo" || info.Version != "1.0" || info.Release != "2" || info.Arch != "noarch" || info.FullVersion != "1.0-2" {
		t.Errorf("%+v", info)
	}
}

// Files that are not packages, truncated or lying about sizes are refused
// with an error, never a panic or a huge allocation.
func TestBadFiles(t *testing.T) {
	need(t, "dpkg-deb", "rpmbuild")
	dir := t.TempDir()
	deb, _ := os.ReadFile(testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-bad", Version: "1.0"}))
	rpm, _ := os.ReadFile(testutil.BuildRPM(t, dir, testutil.RPM{Name: "aminator-bad", Version: "1", Release: "1", Files: map[string]string{"/opt/y": "y\n"}}))
	hugeMember := append([]byte(nil), deb...)
	// The control member's size field (the second ar header, after debian-binary's 4 bytes).
	copy(hugeMember[8+60+4+48:8+60+4+58], []byte("9999999999"))
	hugeRPM := append([]byte(nil), rpm...)
	copy(hugeRPM[96+8:96+16], []byte{0, 0, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff})
	plain := filepath.Join(dir, "plain.deb")
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-Znone", "--build", filepath.Join(dir, "aminator-bad-1.0-root"), plain).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v %s", err, b)
	}
	plainData, _ := os.ReadFile(plain)
	badName := bytes.Replace(plainData, []byte("Package: aminator-bad"), []byte("Package: AMINATOR_BAD"), 1)
	if bytes.Equal(badName, plainData) {
		t.Fatal("no control field to spoil")
	}
	for name, data := range map[string][]byte{
		"empty": nil, "text": []byte("hello\n"), "ar only": []byte("!<arch>\n"),
		"deb truncated": deb[:200], "deb huge member": hugeMember, "deb as rpm": deb, "rpm truncated": rpm[:150],
		"rpm huge header": hugeRPM, "rpm as deb": rpm, "deb bad name": badName,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, data, 0o644)
		read := Deb
		if strings.HasPrefix(name, "rpm") || name == "deb as rpm" {
			read = RPM
		}
		if name == "rpm as deb" {
			read = Deb
		}
		if info, err := read(p); err == nil {
			t.Errorf("%s: accepted as %+v", name, info)
		}
	}
}

func FuzzDebControl(f *testing.F) {
	f.Add([]byte("!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		debControl(bytes.NewReader(b))
		rpmHeader(bytes.NewReader(b))
	})
}

// Debian's and rpm's names for an architecture fit the image's (EC2's)
// name; architecture-independent packages fit both.
func TestFitsArch(t *testing.T) {
	for _, tc := range []struct {
		pkg, image string
		fits       bool
	}{
		{"all", "x86_64", true}, {"all", "arm64", true}, {"noarch", "arm64", true}, {"noarch", "x86_64", true},
		{"amd64", "x86_64", true}, {"arm64", "arm64", true}, {"x86_64", "x86_64", true}, {"aarch64", "arm64", true},
		{"amd64", "arm64", false}, {"arm64", "x86_64", false}, {"aarch64", "x86_64", false}, {"x86_64", "arm64", false},
		{"i386", "x86_64", false}, {"i686", "i386", true}, {"armhf", "arm64", false}, {"s390x", "x86_64", false}, {"", "x86_64", false},
	} {
		if got := FitsArch(tc.pkg, tc.image); got != tc.fits {
			t.Errorf("FitsArch(%q, %q) = %v, want %v", tc.pkg, tc.image, got, tc.fits)
		}
	}
}
