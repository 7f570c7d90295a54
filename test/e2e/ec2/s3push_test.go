package ec2

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// awsProxy stands between aminate and moto: it records the requests (EC2
// query forms, S3 PUTs) and can refuse or slow some, since moto keeps
// little of what RegisterImage is sent and never answers 403.
type awsProxy struct {
	mu     sync.Mutex
	forms  []url.Values
	puts   []string // paths of S3 PUTs answered
	deny   string   // bucket whose PUTs get 403
	slow   string   // bucket whose part PUTs take a second
	fail   string   // EC2 action answered with an error
	server *httptest.Server
}

func newAWSProxy(t *testing.T, target string) *awsProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &awsProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the killed push's requests end half way
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		deny, slow, fail := p.deny, p.slow, p.fail
		f, _ := url.ParseQuery(string(body))
		if f.Get("Action") != "" {
			p.forms = append(p.forms, f)
		}
		p.mu.Unlock()
		if fail != "" && f.Get("Action") == fail {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidParameterValue</Code><Message>injected</Message></Error></Errors><RequestID>r</RequestID></Response>`)
			return
		}
		if r.Method == http.MethodPut && deny != "" && strings.HasPrefix(r.URL.Path, "/"+deny+"/") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		if r.Method == http.MethodPut && slow != "" && strings.HasPrefix(r.URL.Path, "/"+slow+"/") && strings.Contains(r.URL.Path, ".part.") {
			time.Sleep(time.Second)
		}
		rp.ServeHTTP(w, r)
		if r.Method == http.MethodPut {
			p.mu.Lock()
			p.puts = append(p.puts, r.URL.Path)
			p.mu.Unlock()
		}
	}))
	t.Cleanup(p.server.Close)
	return p
}

func (p *awsProxy) actions(action string) []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []url.Values
	for _, f := range p.forms {
		if f.Get("Action") == action {
			out = append(out, f)
		}
	}
	return out
}

func (p *awsProxy) putCount(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, path := range p.puts {
		if strings.HasPrefix(path, prefix) {
			n++
		}
	}
	return n
}

// vars points aminate at the proxy instead of moto.
func (p *awsProxy) vars(e *ec2test.Env) []string {
	out := []string{}
	for _, v := range e.Vars {
		if strings.HasPrefix(v, "AWS_ENDPOINT_URL=") {
			v = "AWS_ENDPOINT_URL=" + p.server.URL
		}
		out = append(out, v)
	}
	return out
}

func s3Admin(e *ec2test.Env) *s3.Client {
	return s3.New(s3.Options{Region: e.Region, BaseEndpoint: aws.String(e.MotoURL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
}

func bucketKeys(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// aminate push --store-type s3 bundles a local image into a bucket and
// registers an instance-store AMI from its manifest: the bundle read back
// from the bucket is the image's disk, and RegisterImage was sent the
// manifest location. A missing bucket and a 403 fail clearly and register
// nothing; an upload killed half way leaves parts that gc removes.
func ec2PushS3(t *testing.T) {
	e := startEC2(t)
	proxy := newAWSProxy(t, e.MotoURL)
	admin := s3Admin(e)
	for _, b := range []string{"images", "denied", "killed"} {
		if _, err := admin.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	b := base(t) // a whole-disk filesystem: no boot loader
	key, cert := userCert(t)
	// Refused as EC2 could not boot it, before anything is bundled.
	r := aminateEnv(t, proxy.vars(e), "push", "--store-type", "s3", "--bucket", "images/apps", "--cert", cert, "--privatekey", key,
		"--account", "123456789012", b)
	if r.Code != 2 || !strings.Contains(r.Stderr, "the disk has no boot loader") || len(bucketKeys(t, admin, "images")) != 0 || len(proxy.actions("RegisterImage")) != 0 {
		t.Fatalf("a loader-less push to S3: exit %d\n%s", r.Code, r.Stderr)
	}
	push := func(bucket string, extra ...string) result {
		args := append([]string{"push", "--store-type", "s3", "--bucket", bucket, "--cert", cert, "--privatekey", key,
			"--account", "123456789012", "--output", "json", "--allow-no-loader"}, extra...)
		return aminateEnv(t, proxy.vars(e), append(args, b)...)
	}
	var res struct {
		ImageID          string `json:"image_id"`
		ManifestLocation string `json:"manifest_location"`
		Parts            int    `json:"parts"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, push("images/apps", "-n", "pushed-s3"))), &res); err != nil {
		t.Fatal(err)
	}
	if res.ManifestLocation != "images/apps/pushed-s3.manifest.xml" || !strings.HasPrefix(res.ImageID, "ami-") {
		t.Fatalf("push result %+v", res)
	}
	if keys := bucketKeys(t, admin, "images"); len(keys) != res.Parts+1 {
		t.Fatalf("bucket holds %v, want %d parts and the manifest", keys, res.Parts)
	}
	reg := proxy.actions("RegisterImage")
	if len(reg) != 1 || reg[0].Get("ImageLocation") != res.ManifestLocation || reg[0].Get("Name") != "pushed-s3" ||
		reg[0].Get("RootDeviceName") != "/dev/sda1" || reg[0].Get("BlockDeviceMapping.1.VirtualName") != "ephemeral0" || reg[0].Has("BootMode") {
		t.Fatalf("RegisterImage sent %v", reg)
	}
	st := newTestStore(t, e, "images/apps")
	doc, err := st.Manifest(context.Background(), "pushed-s3")
	if err != nil {
		t.Fatal(err)
	}
	unbundleFile(t, doc, key, st.Opener(), rawDisk(t, stateDir(), b))

	r = push("no-such-bucket")
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
		t.Fatalf("missing bucket: exit %d: %s", r.Code, r.Stderr)
	}
	proxy.mu.Lock()
	proxy.deny = "denied"
	proxy.mu.Unlock()
	if r := push("denied"); r.Code == 0 || !strings.Contains(r.Stderr, "access denied (403)") {
		t.Fatalf("403: exit %d: %s", r.Code, r.Stderr)
	}
	if n := len(proxy.actions("RegisterImage")); n != 1 {
		t.Fatalf("a failed push registered an image (%d RegisterImage)", n)
	}
	proxy.mu.Lock()
	proxy.fail = "RegisterImage"
	proxy.mu.Unlock()
	if r := push("images/apps", "-n", "unregistered"); r.Code == 0 || !strings.Contains(r.Stderr, "injected") {
		t.Fatalf("a failed registration: exit %d: %s", r.Code, r.Stderr)
	}
	for _, k := range bucketKeys(t, admin, "images") {
		if strings.Contains(k, "unregistered") {
			t.Fatalf("a failed registration left %s", k)
		}
	}
	proxy.mu.Lock()
	proxy.fail = ""
	proxy.mu.Unlock()
	killMidUpload(t, e, proxy, admin, push)
}

// killMidUpload kills a push while its parts go up, then gc removes them.
func killMidUpload(t *testing.T, e *ec2test.Env, proxy *awsProxy, admin *s3.Client, push func(string, ...string) result) {
	t.Helper()
	proxy.mu.Lock()
	proxy.slow = "killed"
	proxy.mu.Unlock()
	key, cert := userCert(t)
	cmd := exec.Command(binary(), "push", "--store-type", "s3", "--bucket", "killed", "--cert", cert, "--privatekey", key,
		"--account", "123456789012", "--workers", "1", "--allow-no-loader", base(t))
	cmd.Env = shared().Env(proxy.vars(e)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for proxy.putCount("/killed/") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	keys := bucketKeys(t, admin, "killed")
	if len(keys) < 2 {
		t.Fatalf("the killed push left %v: want parts", keys)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ".manifest.xml") {
			t.Fatalf("the killed push wrote its manifest")
		}
	}
	if n := len(proxy.actions("RegisterImage")); n != 2 {
		t.Fatalf("the killed push registered an image")
	}
	out := mustOK(t, aminateEnv(t, e.Vars, "gc", "--bucket", "killed", "--output", "json"))
	if !strings.Contains(out, "killed/") {
		t.Fatalf("gc --bucket: %s", out)
	}
	if keys := bucketKeys(t, admin, "killed"); len(keys) != 0 {
		t.Fatalf("gc left %v", keys)
	}
	mustOK(t, aminate(t, "gc")) // the killed push's scratch in the state directory
	if ents, _ := os.ReadDir(stateDir() + "/tmp"); len(ents) != 0 {
		t.Fatalf("left in the state directory: %v", ents)
	}
	// The pushed image's bundle is used: gc keeps it.
	mustOK(t, aminateEnv(t, e.Vars, "gc", "--bucket", "images/apps"))
	if keys := bucketKeys(t, admin, "images"); len(keys) == 0 {
		t.Fatal("gc removed a bundle an image uses")
	}
}
