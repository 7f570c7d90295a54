package imds

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/testutil"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEkXzq1pMiM0ZWjvvPW5VQq6xG0lTqY4JiJ9QJ0b9d7m boottest"

func testConfig() Config {
	return Config{
		InstanceID:       "i-0aminator0000001",
		InstanceType:     "t3.micro",
		ImageID:          "ami-0123456789abcdef0",
		AvailabilityZone: "eu-west-1b",
		LocalIPv4:        "10.0.2.15",
		MAC:              "52:54:00:12:34:56",
		KeyName:          "boottest",
		PublicKey:        testKey,
		UserData:         []byte("#cloud-config\nruncmd: [true]\n\x00\xff"),
	}
}

// serve starts c's service on a loopback listener and returns its base URL.
func serve(t *testing.T, c Config) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s, err := Start(c, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return "http://" + l.Addr().String()
}

func do(t *testing.T, method, url string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// get fetches path and fails the test unless it answers 200.
func get(t *testing.T, base, path string) string {
	t.Helper()
	code, body, _ := do(t, "GET", base+path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

func wantBody(t *testing.T, base, path, want string) {
	t.Helper()
	if got := strings.TrimSpace(get(t, base, path)); got != want {
		t.Errorf("GET %s = %q, want %q", path, got, want)
	}
}

func TestIMDSv2TokenFlow(t *testing.T) {
	base := serve(t, testConfig())
	code, token, h := do(t, "PUT", base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
	if code != http.StatusOK || token == "" || h.Get("X-aws-ec2-metadata-token-ttl-seconds") != "21600" {
		t.Fatalf("PUT token: %d %q %v", code, token, h)
	}
	code, body, _ := do(t, "GET", base+"/latest/meta-data/instance-id", map[string]string{"X-aws-ec2-metadata-token": token})
	if code != http.StatusOK || body != "i-0aminator0000001" {
		t.Errorf("GET with the token: %d %q", code, body)
	}
	if code, _, _ := do(t, "PUT", base+"/latest/api/token", nil); code != http.StatusBadRequest {
		t.Errorf("PUT token without a TTL: %d, want 400", code)
	}
}

func TestIMDSv1(t *testing.T) {
	base := serve(t, testConfig())
	wantBody(t, base, "/latest/meta-data/instance-id", "i-0aminator0000001")
}

func TestDatedVersions(t *testing.T) {
	base := serve(t, testConfig())
	for _, v := range []string{"2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "1.0"} {
		wantBody(t, base, "/"+v+"/meta-data/instance-id", "i-0aminator0000001")
		if get(t, base, "/"+v+"/meta-data/") != get(t, base, "/latest/meta-data/") {
			t.Errorf("%s's meta-data listing differs from latest's", v)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(get(t, base, "/2021-03-23/dynamic/instance-identity/document")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["instanceId"] != "i-0aminator0000001" || doc["region"] != "eu-west-1" || doc["privateIp"] != "10.0.2.15" {
		t.Errorf("identity document: %v", doc)
	}
	versions := strings.Split(get(t, base, "/"), "\n")
	for _, v := range []string{"latest", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23"} {
		if !slices.Contains(versions, v) {
			t.Errorf("GET / does not list %s: %q", v, versions)
		}
	}
}

func TestKeyListedAsRealIMDS(t *testing.T) {
	base := serve(t, testConfig())
	for _, prefix := range []string{"/latest", "/2009-04-04"} {
		wantBody(t, base, prefix+"/meta-data/public-keys/", "0=boottest")
		wantBody(t, base, prefix+"/meta-data/public-keys", "0=boottest")
		wantBody(t, base, prefix+"/meta-data/public-keys/0/", "openssh-key")
		wantBody(t, base, prefix+"/meta-data/public-keys/0/openssh-key", testKey)
	}
	if !slices.Contains(lines(get(t, base, "/latest/meta-data/")), "public-keys/") {
		t.Error("meta-data/ does not list public-keys/")
	}
}

func TestNoKeyNoKeyPaths(t *testing.T) {
	c := testConfig()
	c.PublicKey, c.KeyName = "", ""
	base := serve(t, c)
	if code, _, _ := do(t, "GET", base+"/latest/meta-data/public-keys/", nil); code != http.StatusNotFound {
		t.Errorf("public-keys/ without a key: %d, want 404", code)
	}
	if slices.Contains(lines(get(t, base, "/latest/meta-data/")), "public-keys/") {
		t.Error("meta-data/ lists public-keys/ without a key")
	}
}

func TestInstanceValues(t *testing.T) {
	base := serve(t, testConfig())
	mac := "/latest/meta-data/network/interfaces/macs/52:54:00:12:34:56/"
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":                 "i-0aminator0000001",
		"/latest/meta-data/instance-type":               "t3.micro",
		"/latest/meta-data/ami-id":                      "ami-0123456789abcdef0",
		"/latest/meta-data/placement/availability-zone": "eu-west-1b",
		"/latest/meta-data/placement/region":            "eu-west-1",
		"/latest/meta-data/mac":                         "52:54:00:12:34:56",
		"/latest/meta-data/local-ipv4":                  "10.0.2.15",
		"/latest/meta-data/hostname":                    "ip-10-0-2-15.eu-west-1.compute.internal",
		"/latest/meta-data/local-hostname":              "ip-10-0-2-15.eu-west-1.compute.internal",
		"/latest/meta-data/instance-life-cycle":         "on-demand",
		"/latest/meta-data/network/interfaces/macs/":    "52:54:00:12:34:56/",
		mac + "mac":                    "52:54:00:12:34:56",
		mac + "local-ipv4s":            "10.0.2.15",
		mac + "subnet-ipv4-cidr-block": "10.0.2.0/24",
		mac + "device-number":          "0",
	} {
		wantBody(t, base, path, want)
	}
}

func TestUserData(t *testing.T) {
	c := testConfig()
	base := serve(t, c)
	if got := get(t, base, "/latest/user-data"); got != string(c.UserData) {
		t.Errorf("user-data = %q, want %q", got, c.UserData)
	}
	if got := get(t, base, "/2009-04-04/user-data"); got != string(c.UserData) {
		t.Errorf("dated user-data = %q", got)
	}
	c.UserData = nil
	base = serve(t, c)
	if code, _, _ := do(t, "GET", base+"/latest/user-data", nil); code != http.StatusNotFound {
		t.Errorf("user-data without any: %d, want 404", code)
	}
}

func TestQuietInstance(t *testing.T) {
	base := serve(t, testConfig())
	for _, path := range []string{"/latest/meta-data/spot/instance-action", "/latest/meta-data/spot/termination-time",
		"/latest/meta-data/events/recommendations/rebalance", "/latest/meta-data/autoscaling/target-lifecycle-state"} {
		if code, body, _ := do(t, "GET", base+path, nil); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q, want 404", path, code, body)
		}
	}
	wantBody(t, base, "/latest/meta-data/instance-action", "none")
	var events []map[string]string
	if err := json.Unmarshal([]byte(get(t, base, "/latest/meta-data/events/maintenance/scheduled")), &events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e["State"] != "completed" {
			t.Errorf("a scheduled event is pending: %v", e)
		}
	}
	if listed := lines(get(t, base, "/latest/meta-data/")); slices.Contains(listed, "spot/") || slices.Contains(listed, "autoscaling/") {
		t.Errorf("meta-data/ lists spot or autoscaling: %q", listed)
	}
}

// TestEveryListedPathAnswers walks the tree as cloud-init's crawler does
// (a listed "0=name" is read at 0/openssh-key): a listed path answering
// 404 makes cloud-init give up the datasource.
func TestEveryListedPathAnswers(t *testing.T) {
	base := serve(t, testConfig())
	n := crawl(t, base, "/2021-03-23/meta-data/") + crawl(t, base, "/2021-03-23/dynamic/instance-identity/")
	if n < 30 {
		t.Errorf("crawled only %d leaves", n)
	}
}

func crawl(t *testing.T, base, dir string) int {
	t.Helper()
	leaves := 0
	for _, entry := range lines(get(t, base, dir)) {
		name, _, keyed := strings.Cut(entry, "=")
		switch {
		case strings.HasSuffix(entry, "/"):
			leaves += crawl(t, base, dir+entry)
		case keyed:
			get(t, base, dir+name+"/openssh-key")
			leaves++
		default:
			get(t, base, dir+entry)
			leaves++
		}
	}
	return leaves
}

func TestServersAreIndependent(t *testing.T) {
	a, b := testConfig(), testConfig()
	b.InstanceID, b.MAC = "i-0aminator0000002", "52:54:00:ab:cd:ef"
	baseA, baseB := serve(t, a), serve(t, b)
	wantBody(t, baseA, "/latest/meta-data/instance-id", a.InstanceID)
	wantBody(t, baseB, "/latest/meta-data/instance-id", b.InstanceID)
	wantBody(t, baseA, "/latest/meta-data/network/interfaces/macs/", "52:54:00:12:34:56/")
	wantBody(t, baseB, "/latest/meta-data/network/interfaces/macs/", "52:54:00:ab:cd:ef/")
}

func TestMockTouchesNoFilesAndLogsToLog(t *testing.T) {
	home, cwd := t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Chdir(cwd)
	var log testutil.SyncBuffer
	c := testConfig()
	c.Log = &log
	base := serve(t, c)
	get(t, base, "/latest/meta-data/instance-id")
	for _, dir := range []string{home, cwd} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s has %v", dir, entries)
		}
	}
	// The mock logs a request after it has answered it.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "/latest/meta-data/instance-id"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the request is not in the log: %q", log.String())
		}
	}
}

func TestCloseStops(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := Start(testConfig(), l)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if s.cmd.ProcessState == nil {
		t.Error("the child was not reaped")
	}
}

func TestInvalidConfig(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for name, c := range map[string]Config{
		"bad MAC":            {MAC: "52:54:00"},
		"IPv6 as LocalIPv4":  {LocalIPv4: "fd00::1"},
		"key without a name": {PublicKey: testKey},
		"two keys":           {KeyName: "k", PublicKey: testKey + "\n" + testKey},
	} {
		if s, err := Start(c, l); err == nil {
			s.Close()
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Start(testConfig()); err == nil {
		t.Error("no listener: accepted")
	}
}

func TestDerivedFields(t *testing.T) {
	c := Config{AvailabilityZone: "us-east-1c", LocalIPv4: "10.0.2.15"}.filled()
	if c.Region != "us-east-1" || c.Hostname != "ip-10-0-2-15.ec2.internal" {
		t.Errorf("filled: %+v", c)
	}
	if c := (Config{Region: "eu-central-1"}).filled(); c.AvailabilityZone != "eu-central-1a" {
		t.Errorf("filled: %+v", c)
	}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// A program that links the mock and starts with no $HOME (aminate
// re-executed by the sandbox) prints nothing about a home directory.
func TestNoHomeWarning(t *testing.T) {
	if os.Getenv("AMINATOR_HUSH_CHILD") == "1" {
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestNoHomeWarning$")
	cmd.Env = []string{"AMINATOR_HUSH_CHILD=1"}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "home directory") {
		t.Errorf("%v: %s", err, out)
	}
}
