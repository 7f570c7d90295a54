package bundlestore

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/store/s3bundle"
)

// The parts and then the manifest land in the bucket, each PUT with
// Content-MD5, the aws-exec-read ACL and the bundle's tags; the bundle
// read back from the bucket restores the disk.
func testUploadRoundTrip(t *testing.T, f *fixture) {
	dir, m := f.bundle(t)
	s := f.store(t, f.bucket+"/bundles", Options{LockDir: t.TempDir()})
	up, err := s.Upload(context.Background(), dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if up.ManifestLocation != f.bucket+"/bundles/app.img.manifest.xml" || up.PartsSent != len(m.Parts) || len(m.Parts) < 4 {
		t.Fatalf("upload %+v of %d parts", up, len(m.Parts))
	}
	keys := f.keys(t)
	if len(keys) != len(m.Parts)+1 {
		t.Fatalf("bucket holds %v", keys)
	}
	puts := f.tr.puts("")
	for _, r := range puts {
		if r.Header.Get("Content-Md5") == "" || r.Header.Get("X-Amz-Acl") != "aws-exec-read" ||
			!strings.Contains(r.Header.Get("X-Amz-Tagging"), "aminator-bundle=app.img") {
			t.Fatalf("PUT %s headers %v", r.Path, r.Header)
		}
	}
	if last := puts[len(puts)-1].Path; !strings.HasSuffix(last, ".manifest.xml") {
		t.Fatalf("the last PUT is %s, want the manifest", last)
	}
	// moto takes the aws-exec-read ACL but grants nothing for it
	// ("TODO: bucket owner, EC2 Read" in moto/s3/models.py): the header
	// sent is what is checked above.
	doc, err := s.Manifest(context.Background(), m.Name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "out.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := s3bundle.Unbundle(context.Background(), doc, f.o.Key, s.Opener(), out); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(f.disk)
	got, _ := os.ReadFile(out.Name())
	if string(want) != string(got) {
		t.Fatal("the disk unbundled from the bucket differs")
	}
}

// An upload resumes: parts already in the bucket are not sent again; a
// transient 500 is retried; a 403 is not, and says so.
func testUploadResumeRetryAndDenied(t *testing.T, f *fixture) {
	dir, m := f.bundle(t)
	s := f.store(t, f.bucket, Options{})
	f.tr.inject = failPut(m.Parts[2].Name, http.StatusForbidden, "AccessDenied", 100)
	_, err := s.Upload(context.Background(), dir, m)
	if err == nil || !strings.Contains(err.Error(), "access denied (403)") {
		t.Fatalf("error %v, want access denied", err)
	}
	if n := len(f.tr.puts(m.Parts[2].Name)); n != 1 {
		t.Fatalf("a 403 was tried %d times", n)
	}
	for _, k := range f.keys(t) {
		if strings.HasSuffix(k, ".manifest.xml") {
			t.Fatalf("a failed upload wrote its manifest")
		}
	}
	f.tr.inject = failPut(m.Name+".manifest.xml", http.StatusInternalServerError, "InternalError", 2)
	up, err := s.Upload(context.Background(), dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if up.PartsKept == 0 || up.PartsKept+up.PartsSent != len(m.Parts) {
		t.Fatalf("resumed upload %+v of %d parts", up, len(m.Parts))
	}
	if n := len(f.tr.puts(".manifest.xml")); n != 3 {
		t.Fatalf("the manifest was sent %d times, want 2 failures and a retry that worked", n)
	}
}

// failPut answers the first n PUTs of a file with an error.
func failPut(file string, status int, code string, n int) func(*http.Request) *http.Response {
	count := 0
	return func(r *http.Request) *http.Response {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+file) && count < n {
			count++
			return s3Error(status, code)
		}
		return nil
	}
}

func testMissingBucket(t *testing.T, f *fixture) {
	dir, m := f.bundle(t)
	s := f.store(t, "no-such-bucket", Options{})
	_, err := s.Upload(context.Background(), dir, m)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("error %v, want the bucket does not exist", err)
	}
	for _, bad := range []string{"", "UPPER", "a", "b/../../c x"} {
		if _, err := New(f.cfg, bad, Options{}); err == nil {
			t.Errorf("bucket %q accepted", bad)
		}
	}
	if _, err := New(f.cfg, "images", Options{ACL: "world-writable"}); err == nil {
		t.Error("a made-up ACL accepted")
	}
}

// An upload that dies half way leaves parts and no manifest; gc removes
// them, and leaves a bundle an image uses.
func testGCRemovesHalfBundles(t *testing.T, f *fixture) {
	ctx := context.Background()
	dir, m := f.bundle(t)
	s := f.store(t, f.bucket, Options{LockDir: t.TempDir(), Workers: 1})
	f.tr.inject = failPut(m.Parts[3].Name, http.StatusForbidden, "AccessDenied", 1)
	if _, err := s.Upload(ctx, dir, m); err == nil {
		t.Fatal("upload succeeded")
	}
	f.tr.inject = nil
	keep := *f
	keep.disk = filepath.Join(t.TempDir(), "kept.img")
	os.WriteFile(keep.disk, []byte("a disk an image uses"), 0o644)
	kdir, km := keep.bundle(t)
	if _, err := s.Upload(ctx, kdir, km); err != nil {
		t.Fatal(err)
	}
	used := func(loc string) bool { return loc == s.ManifestLocation(km.Name) }
	plan, err := s.PlanGC(ctx, used)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != 1 || plan[0].Name != m.Name || plan[0].Manifest {
		t.Fatalf("gc plan %+v, want the half bundle only", plan)
	}
	if _, err := s.GC(ctx, used); err != nil {
		t.Fatal(err)
	}
	for _, k := range f.keys(t) {
		if strings.HasPrefix(k, m.Name) {
			t.Fatalf("gc left %s", k)
		}
	}
	if n := len(f.keys(t)); n != len(km.Parts)+1 {
		t.Fatalf("gc removed the used bundle's objects: %d left", n)
	}
}

// Publish bundles and uploads from a scratch directory it removes; an
// upload that fails half way removes the parts it had put.
func testPublishFailureRemoves(t *testing.T, f *fixture) {
	ctx := context.Background()
	s := f.store(t, f.bucket, Options{Workers: 1})
	scratch := t.TempDir()
	f.tr.inject = failPut("app.img.part.3", http.StatusForbidden, "AccessDenied", 1)
	if _, err := s.Publish(ctx, f.disk, scratch, f.o); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("error %v", err)
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Fatalf("a failed upload left %v", keys)
	}
	f.tr.inject = nil
	pub, err := s.Publish(ctx, f.disk, scratch, f.o)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.keys(t)) != pub.Parts+1 || pub.PartsSent != pub.Parts {
		t.Fatalf("publish %+v, bucket %v", pub, f.keys(t))
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Fatalf("scratch left %v", ents)
	}
}
