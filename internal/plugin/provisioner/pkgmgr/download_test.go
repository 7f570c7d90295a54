package pkgmgr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/aminator-go/aminator/internal/fetch"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/apt"
	"github.com/aminator-go/aminator/internal/plugin/provisioner/pkgmgr"
	"github.com/aminator-go/aminator/internal/testutil/fakechroot"
	"github.com/aminator-go/aminator/internal/testutil/fetchtest"
)

// A URL is downloaded with the same retries (not after a 4xx), installed
// as a file, and the download removed.
func TestURLDownload(t *testing.T) {
	var hits, missing atomic.Int32
	srv := fetchtest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.deb" {
			missing.Add(1)
			http.NotFound(w, r)
			return
		}
		if hits.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("a .deb"))
	}))
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-url\n")).
		On("dpkg-query", installed("aminator-url", "3.0-2"))
	var tmp string
	d, _ := newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { tmp, o.Fetcher = o.TmpDir, fetcher(t, srv) })
	ref, err := d.Parse(srv.URL + "/aminator-url_3.0-2_all.deb")
	if err != nil || ref.Kind != "url" {
		t.Fatalf("Parse: %+v %v", ref, err)
	}
	info, err := d.Provision(context.Background(), c, ref)
	if err != nil || info.FullVersion != "3.0-2" || hits.Load() != 3 {
		t.Fatalf("Provision: %+v %v after %d requests", info, err, hits.Load())
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("downloads left: %v", ents)
	}
	noStaging(t, c)

	ref, _ = d.Parse(srv.URL + "/missing.deb")
	_, _, err = d.Inspect(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "404") || missing.Load() != 1 {
		t.Errorf("missing: %v after %d requests", err, missing.Load())
	}
}

func TestParseRefs(t *testing.T) {
	dir := t.TempDir()
	deb := packageFile(t, "x_1_all.deb")
	d, _ := newDriver(t, &apt.Backend{}, fakechroot.New(t), nil)
	for _, tc := range []struct{ in, kind, err string }{
		{in: "nginx", kind: "repo"},
		{in: deb, kind: "file"},
		{in: "file://" + deb, kind: "file"},
		{in: "https://example.invalid/x.deb", kind: "url"},
		{in: "./missing.deb", err: "no such file"},
		{in: dir, err: "not a regular file"},
		{in: "http://", err: "not a valid URL"},
		{in: "", err: "no package"},
	} {
		r, err := d.Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q): err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.Kind != tc.kind || (tc.kind == "file" && r.Path != deb) {
			t.Errorf("Parse(%q) = %+v, %v", tc.in, r, err)
		}
	}
}

// fetcher downloads from srv (localhost, by its certificate) and nothing
// else special.
func fetcher(t *testing.T, srv *fetchtest.Server) *fetch.Fetcher {
	f, err := fetch.New(fetch.Policy{Allow: []string{"localhost"}, RootCAs: srv.Pool})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func sha(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// A package's sha256, when given, is checked before anything is
// installed: a URL's as it downloads (once: another attempt cannot fix
// it), a file's as it is copied into the bake's own file, which is what
// is installed; a mismatch leaves no file.
func TestChecksum(t *testing.T) {
	var hits atomic.Int32
	srv := fetchtest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("a .deb"))
	}))
	c := fakechroot.New(t).
		On("dpkg-deb --field", fakechroot.OK("aminator-sum\n")).
		On("dpkg-query", installed("aminator-sum", "1.0"))
	var tmp string
	d, _ := newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { tmp, o.Fetcher = o.TmpDir, fetcher(t, srv) })
	file := packageFile(t, "aminator-sum_1.0_all.deb")
	for _, tc := range []struct{ pkg, sum, err string }{
		{pkg: srv.URL + "/aminator-sum_1.0_all.deb", sum: sha("a .deb")},
		{pkg: srv.URL + "/aminator-sum_1.0_all.deb", sum: sha("other"), err: "has sha256 " + sha("a .deb") + ", not the " + sha("other")},
		{pkg: file, sum: sha("package")},
		{pkg: file, sum: sha("other"), err: "has sha256 " + sha("package") + ", not the " + sha("other") + " asked for (it changed?)"},
		{pkg: file, sum: "abc", err: "package sha256 \"abc\" is not 64 hexadecimal digits"},
	} {
		hits.Store(0)
		ref, err := d.Parse(tc.pkg)
		if err != nil {
			t.Fatal(err)
		}
		ref.SHA256 = tc.sum
		_, err = d.Provision(context.Background(), c, ref)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s with sha256 %s: %v, want %q", tc.pkg, tc.sum, err, tc.err)
		}
		if ref.Kind == "url" && hits.Load() != 1 {
			t.Errorf("%s: %d requests", tc.pkg, hits.Load())
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("%s: left %v", tc.pkg, ents)
		}
		noStaging(t, c)
	}
	if b, _ := os.ReadFile(file); string(b) != "package" {
		t.Errorf("the original file changed: %q", b)
	}
}

// A package file is read as it is when the bake copies it: one replaced
// by a FIFO after it was named is refused without waiting on it, and one
// larger than the download cap is refused; nothing is left.
func TestCheckedCopyRefusesWhatChanged(t *testing.T) {
	c := fakechroot.New(t)
	var tmp string
	small, _ := fetch.New(fetch.Policy{MaxBytes: 3})
	d, _ := newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { tmp, o.Fetcher = o.TmpDir, small })
	big := packageFile(t, "big_1_all.deb")
	fifo := packageFile(t, "fifo_1_all.deb")
	for _, tc := range []struct{ file, err string }{
		{file: big, err: "larger than the 3-byte cap"},
		{file: fifo, err: "not a regular file"},
	} {
		ref, err := d.Parse(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if tc.file == fifo {
			os.Remove(fifo)
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ref.SHA256 = sha("package")
		if _, err := d.Provision(context.Background(), c, ref); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.file, err, tc.err)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("left %v", ents)
		}
	}
	noStaging(t, c)
}
