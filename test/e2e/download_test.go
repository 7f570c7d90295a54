package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/bakery/api"
	"github.com/aminator-go/aminator/internal/bakery/broker"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/fetchtest"
)

const scannerText = "internal scanner: db01 admin password"

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A bake's package URL is downloaded by aminate under the download rules,
// tried against a real https server on the loopback that the test's
// configuration allows by name: redirects to the metadata service, the
// loopback or a private address, plain http, a body over the cap and a
// wrong --package-sha256 are refused with the cause, a 404's body is not
// shown, and nothing is made or left behind. Without the configuration
// the server itself, on the loopback, is refused.
func TestDownloadRules(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-dl", Version: "1.0"})
	files := http.FileServer(http.Dir(dir))
	srv := fetchtest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to":
			http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
		case "/missing.deb":
			http.Error(w, scannerText, http.StatusNotFound)
		default:
			files.ServeHTTP(w, r)
		}
	}))
	conf := srv.ConfigFile(t)
	small := filepath.Join(t.TempDir(), "aminator.yml")
	orig, _ := os.ReadFile(conf)
	os.WriteFile(small, append(orig, "  max_bytes: 100\n"...), 0o644)
	url := srv.URL + "/" + filepath.Base(deb)
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	to := func(u string) string { return srv.URL + "/to?u=" + u }
	images := imageCount(t)

	mustOK(t, aminate(t, "--config", conf, "-B", b, "--dry-run", "--package-sha256", fileSum(t, deb), url))
	other := strings.Repeat("0", 64)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config", conf, "--package-sha256", other, url}, 1, "has sha256 " + fileSum(t, deb) + ", not the " + other},
		{[]string{"--config", conf, to("https://169.254.169.254/latest/meta-data/")}, 1, "redirect to 169.254.169.254 refused: 169.254.169.254 is a link-local address"},
		{[]string{"--config", conf, to("https://127.0.0.1" + port + "/x.deb")}, 1, "redirect to 127.0.0.1 refused: 127.0.0.1 is a loopback address"},
		{[]string{"--config", conf, to("https://10.0.0.1/x.deb")}, 1, "redirect to 10.0.0.1 refused: 10.0.0.1 is a private address"},
		{[]string{"--config", conf, "http://localhost" + port + "/x.deb"}, 1, "plain http://localhost" + port + " refused"},
		{[]string{"--config", conf, srv.URL + "/missing.deb"}, 1, "HTTP 404 Not Found from localhost"},
		{[]string{"--config", small, url}, 1, "larger than the 100-byte cap"},
		{[]string{url}, 1, "connection to localhost refused: 127.0.0.1 is a loopback address"},
		{[]string{"--package-sha256", other, "hello"}, 2, "checks a package file or URL"},
	} {
		args := append([]string{"-B", b, "-s", "dl"}, tc.args...)
		r := aminate(t, args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) || strings.Contains(r.Stderr, "scanner") {
			t.Errorf("aminate %v: exit %d, want %d and %q\n%s", args, r.Code, tc.code, tc.want, r.Stderr)
		}
		nothingMade(t, strings.Join(tc.args, " "), r, images)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir(), "tmp", "*.deb")); len(left) > 0 {
		t.Errorf("downloads or copies left in the state's tmp/: %v", left)
	}
}

// The bakery bakes exactly the bytes whose digest made the request's key:
// a package file that changes between submission and bake is refused by
// the bake (the only worker is busy with a slow bake while the file
// changes, then the slow bake is cancelled). Paths with a symlink in a
// middle component or `..` are refused at submission.
func TestBakeryPinsPackageFiles(t *testing.T) {
	testutil.CheckNoLeaks(t, workDir())
	b := base(t)
	dir := t.TempDir()
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-pinned", Version: "1.0"})
	slow := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-pinned-slow", Version: "1.0", Postinst: "sleep 306"})
	os.Symlink(filepath.Dir(deb), filepath.Join(dir, "link"))
	addr, natsAddr := freeAddr(t), freeAddr(t)
	stopAPI := serve(t, "--embedded-nats", "--embedded-nats-listen", natsAddr, "--listen", addr, "--worker-region=", "--package-dir", dir)
	defer stopAPI()
	c := bakeryClient{T: t, URL: "http://" + addr}
	waitAPI(t, c)
	c.Token = mustOK(t, aminate(t, "bakery", "token", "create", "--team", "pins"))
	stopWorker := serve(t, "--nats", "nats://"+natsAddr, "--nats-creds", filepath.Join(stateDir(), "nats", broker.EmbeddedCreds),
		"--no-api", "--worker-region", "local", "--workers", "1", "--package-dir", dir)
	defer stopWorker()

	for _, bad := range []string{filepath.Join(dir, "link", filepath.Base(deb)), dir + "/link/../" + filepath.Base(deb)} {
		code, body := c.Do("POST", "/api/v1/bakes", bakery.Request{Package: bad, BaseID: b, Region: "local"})
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
	busy := submitWhenLive(c, bakery.Request{Package: slow, BaseID: b, Region: "local"})
	c.Wait(busy.Bake.ID, bakery.Running)
	sum := fileSum(t, deb)
	_, sub := c.Submit(bakery.Request{Package: deb, BaseID: b, Region: "local"})
	if sub.Bake.Request.PackageSHA256 != sum {
		t.Errorf("the API pinned %q, want %s", sub.Bake.Request.PackageSHA256, sum)
	}
	f, err := os.OpenFile(deb, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("changed after submission\n"))
	f.Close()
	if code, body := c.Do("POST", "/api/v1/bakes/"+busy.Bake.ID+"/cancel", nil); code != http.StatusOK {
		t.Fatalf("cancel: %d %s", code, body)
	}
	r := c.Wait(sub.Bake.ID, bakery.Completed, bakery.Failed)
	if r.State != bakery.Failed || !strings.Contains(r.Error, "not the "+sum+" asked for") {
		t.Errorf("a changed package file: %s %q", r.State, r.Error)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir(), "tmp", "package-*")); len(left) > 0 {
		t.Errorf("checked copies left in the state's tmp/: %v", left)
	}
}

// submitWhenLive submits req once a worker for its region has announced
// itself (a worker started just before may not have yet: 503).
func submitWhenLive(c bakeryClient, req bakery.Request) api.SubmitResponse {
	c.T.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, b := c.Do("POST", "/api/v1/bakes", req)
		if code == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			continue
		}
		var r api.SubmitResponse
		if code >= 300 || json.Unmarshal(b, &r) != nil {
			c.T.Fatalf("submit: %d %s", code, b)
		}
		return r
	}
}
