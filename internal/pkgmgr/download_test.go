package pkgmgr_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aminator-go/aminator/internal/chroot/chroottest"
	"github.com/aminator-go/aminator/internal/pkgmgr"
	"github.com/aminator-go/aminator/internal/provisioner/apt"
)

// A URL is downloaded with the same retries (not after a 4xx), installed
// as a file, and the download removed.
func TestURLDownload(t *testing.T) {
	var hits, missing atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	defer srv.Close()
	c := chroottest.New(t).
		On("dpkg-deb --field", chroottest.OK("aminator-url\n")).
		On("dpkg-query", installed("aminator-url", "3.0-2"))
	var tmp string
	d, _ := newDriver(t, &apt.Backend{}, c, func(o *pkgmgr.Options) { tmp = o.TmpDir })
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
	d, _ := newDriver(t, &apt.Backend{}, chroottest.New(t), nil)
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
