package bakery

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func digest(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

// A package file is taken only beneath --package-dir, reached without a
// symlink in any component and without `..`.
func TestPackageFileConfined(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pkgs")
	os.MkdirAll(filepath.Join(dir, "team"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "team", "app.deb"), []byte("app"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "shadow.deb"), []byte("secret"), 0o644)
	os.Symlink(filepath.Join(root, "etc"), filepath.Join(dir, "escape"))
	os.Symlink(filepath.Join(dir, "team"), filepath.Join(dir, "alias"))
	for _, tc := range []struct{ pkg, err string }{
		{pkg: filepath.Join(dir, "team", "app.deb")},
		{pkg: "file://" + filepath.Join(dir, "team", "app.deb")},
		{pkg: filepath.Join(dir, "escape", "shadow.deb"), err: "a component is a symlink"},
		{pkg: filepath.Join(dir, "alias", "app.deb"), err: "a component is a symlink"},
		{pkg: dir + "/../etc/shadow.deb", err: "must be a clean absolute path"},
		{pkg: filepath.Join(root, "etc", "shadow.deb"), err: "must be a clean absolute path under"},
		{pkg: "app", err: ""},
	} {
		r := Request{Package: tc.pkg, BaseID: "ami-00000000000000001", Region: "local"}
		err := r.Validate(dir)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.pkg, err, tc.err)
		}
	}
}

// The API pins a package file's digest into the request (refusing one
// that does not match the digest given); the key is made of it, so new
// content makes a new key. A URL's digest, when given, is in the key too;
// a repository package takes none.
func TestPinPackage(t *testing.T) {
	dir := t.TempDir()
	deb := filepath.Join(dir, "app.deb")
	os.WriteFile(deb, []byte("one"), 0o644)
	r := Request{Package: deb, BaseID: "ami-00000000000000001", Region: "local"}
	if err := r.PinPackage(dir); err != nil || r.PackageSHA256 != digest("one") {
		t.Fatalf("pinned %q: %v", r.PackageSHA256, err)
	}
	k1 := Key(r, "ami-1")
	os.WriteFile(deb, []byte("two"), 0o644)
	r2 := Request{Package: deb, BaseID: "ami-00000000000000001", Region: "local"}
	r2.PinPackage(dir)
	if Key(r2, "ami-1") == k1 {
		t.Error("new content, same key")
	}
	r3 := Request{Package: deb, PackageSHA256: digest("one"), BaseID: "ami-00000000000000001", Region: "local"}
	if err := r3.PinPackage(dir); err == nil || !strings.Contains(err.Error(), "has sha256 "+digest("two")+", not the "+digest("one")) {
		t.Errorf("mismatch: %v", err)
	}
	u := Request{Package: "https://example.com/app.deb", BaseID: "ami-00000000000000001", Region: "local"}
	ku := Key(u, "ami-1")
	u.PackageSHA256 = digest("one")
	if err := u.Validate(""); err != nil || Key(u, "ami-1") == ku {
		t.Errorf("a URL's digest: %v, or not in the key", err)
	}
	for _, bad := range []Request{
		{Package: "app", PackageSHA256: digest("one"), BaseID: "ami-00000000000000001", Region: "local"},
		{Package: "https://example.com/app.deb", PackageSHA256: "abc", BaseID: "ami-00000000000000001", Region: "local"},
	} {
		if err := bad.Validate(""); err == nil || !strings.Contains(err.Error(), "package_sha256") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
