// Package ec2test starts a real EC2 API (moto's server) and a real
// instance-metadata service (amazon-ec2-metadata-mock, IMDSv2 only) for
// tests, with a base image registered and an instance running that the
// metadata service says is this host.
package ec2test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/aminator-go/aminator/internal/sys/flock"
	"github.com/aminator-go/aminator/internal/testutil"
)

// Env is a running fake AWS.
type Env struct {
	MotoURL, IMDSURL string
	Region, AZ       string
	InstanceID       string
	BaseID           string
	BaseName         string
	// Client talks to moto directly (to check what the code under test did).
	Client *ec2.Client
	// Vars are the environment variables that point the SDK at the fakes.
	Vars []string
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHTTP(t testing.TB, url string, cmd *exec.Cmd, log *bytes.Buffer) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not come up:\n%s", url, log.String())
}

// start runs a server process for the test's lifetime.
func start(t testing.TB, name string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, &out
}

var (
	mockOnce sync.Once
	mockBin  string
	mockErr  error
)

// metadataMock builds amazon-ec2-metadata-mock once per cache directory.
func metadataMock(t testing.TB) string {
	mockOnce.Do(func() {
		dir := filepath.Join(testutil.CacheDir(t), "aemm-v1.13.0")
		mockBin = filepath.Join(dir, "ec2-metadata-mock")
		// Test binaries of several packages run at once: one builds, the others wait.
		lock, err := flock.Exclusive(context.Background(), dir+".lock")
		if err != nil {
			mockErr = err
			return
		}
		defer lock.Unlock()
		if _, err := os.Stat(mockBin); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@v1.13.0")
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		cmd.Dir = os.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			mockErr = fmt.Errorf("go install amazon-ec2-metadata-mock: %v\n%s", err, out)
		}
	})
	if mockErr != nil {
		t.Fatal(mockErr)
	}
	return mockBin
}

// Moto starts moto's server alone, for the test's lifetime, and returns
// its URL: for a test of another AWS service (KMS) that needs no EC2 state
// and no metadata service. It skips the test when moto is not installed.
func Moto(t testing.TB) string {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		t.Skip("moto is not installed (python3 -m moto.server)")
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	_, port, _ := strings.Cut(strings.TrimPrefix(url, "http://"), ":")
	cmd, log := start(t, "python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", port)
	waitHTTP(t, url+"/moto-api/", cmd, log)
	return url
}

// Start brings up moto and the metadata mock and sets the standard AWS
// variables (AWS_ENDPOINT_URL, AWS_EC2_METADATA_SERVICE_ENDPOINT, ...) for
// the test, so code under test finds them with no flag of its own.
func Start(t testing.TB) *Env {
	t.Helper()
	return start0(t, false)
}

func start0(t testing.TB, processWide bool) *Env {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		t.Skip("moto is not installed (python3 -m moto.server)")
	}
	e := &Env{Region: "us-east-1", AZ: "us-east-1a", BaseName: "aminator-test-base"}
	mp := freePort(t)
	e.MotoURL = fmt.Sprintf("http://127.0.0.1:%d", mp)
	cmd, log := start(t, "python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(mp))
	waitHTTP(t, e.MotoURL+"/moto-api/", cmd, log)
	e.Client = ec2.New(ec2.Options{Region: e.Region, BaseEndpoint: aws.String(e.MotoURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	ctx := context.Background()
	vol, err := e.Client.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(e.AZ), Size: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.Client.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId})
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.Client.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String(e.BaseName), RootDeviceName: aws.String("/dev/sda1"),
		Architecture: types.ArchitectureValuesX8664, VirtualizationType: aws.String("hvm"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{SnapshotId: snap.SnapshotId}}}})
	if err != nil {
		t.Fatal(err)
	}
	e.BaseID = aws.ToString(img.ImageId)
	e.Client.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{e.BaseID}, Tags: []types.Tag{{Key: aws.String("appversion"), Value: aws.String("base-1.0-1")}, {Key: aws.String("role"), Value: aws.String("base")}}})
	e.Client.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: vol.VolumeId})
	run, err := e.Client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: img.ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: types.InstanceTypeM5Large, Placement: &types.Placement{AvailabilityZone: aws.String(e.AZ)}})
	if err != nil {
		t.Fatal(err)
	}
	e.InstanceID = aws.ToString(run.Instances[0].InstanceId)

	conf := map[string]any{
		"metadata": map[string]any{"values": map[string]any{"instance-id": e.InstanceID, "placement-availability-zone": e.AZ}},
		"dynamic": map[string]any{"values": map[string]any{"instance-identity-document": map[string]any{
			"instanceId": e.InstanceID, "availabilityZone": e.AZ, "region": e.Region, "accountId": "123456789012",
			"architecture": "x86_64", "version": "2017-09-30", "imageId": e.BaseID, "instanceType": "m5.large",
			"privateIp": "10.0.0.1", "pendingTime": "2026-01-01T00:00:00Z"}}},
	}
	b, _ := json.Marshal(conf)
	cfgFile := filepath.Join(t.TempDir(), "aemm.json")
	os.WriteFile(cfgFile, b, 0o644)
	ip := freePort(t)
	e.IMDSURL = fmt.Sprintf("http://127.0.0.1:%d", ip)
	cmd, log = start(t, metadataMock(t), "--imdsv2", "-n", "127.0.0.1", "-p", fmt.Sprint(ip), "-c", cfgFile)
	waitHTTP(t, e.IMDSURL+"/latest/api/token", cmd, log)

	e.Vars = []string{
		"AWS_ENDPOINT_URL=" + e.MotoURL, "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + e.IMDSURL,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=" + e.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		// A CA bundle makes the SDK rebuild its HTTP client, which a test's
		// recording client cannot allow; the fakes speak plain HTTP anyway.
		"AWS_CA_BUNDLE=",
	}
	for _, v := range e.Vars {
		k, val, _ := strings.Cut(v, "=")
		if tt, ok := t.(*testing.T); ok && !processWide {
			tt.Setenv(k, val)
		} else {
			setenv(t, k, val)
		}
	}
	return e
}

// StartProcessWide is Start for a test that runs inside a parallel group
// whose EC2 subtests run one after another (t.Setenv refuses parallel
// tests): it sets the variables for the whole process and restores them
// when the test ends. No other test of the process may read them
// meanwhile: tests that run aminate give it e.Vars instead.
func StartProcessWide(t *testing.T) *Env {
	t.Helper()
	return start0(t, true)
}

// setenv sets an environment variable until t ends.
func setenv(t testing.TB, k, v string) {
	old, had := os.LookupEnv(k)
	os.Setenv(k, v)
	t.Cleanup(func() {
		if had {
			os.Setenv(k, old)
		} else {
			os.Unsetenv(k)
		}
	})
}

// Recorder is an HTTP transport that records requests (body included),
// counts them by action, and can answer some itself (to inject errors,
// throttling or delays that moto does not produce).
type Recorder struct {
	mu       sync.Mutex
	Requests []Request
	// Inject, if it returns a response, answers the request instead of the server.
	Inject func(action string, n int) *http.Response
	counts map[string]int
	Next   http.RoundTripper
	// Elapsed is the time spent waiting for answers, all calls together.
	Elapsed time.Duration
}

// Request is one recorded call.
type Request struct {
	Action string
	Form   string
}

// RoundTrip implements http.RoundTripper.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	action := ""
	for _, kv := range strings.Split(string(body), "&") {
		if v, ok := strings.CutPrefix(kv, "Action="); ok {
			action = v
		}
	}
	r.mu.Lock()
	if r.counts == nil {
		r.counts = map[string]int{}
	}
	r.counts[action]++
	n := r.counts[action]
	r.Requests = append(r.Requests, Request{Action: action, Form: string(body)})
	inject := r.Inject
	r.mu.Unlock()
	if inject != nil {
		if resp := inject(action, n); resp != nil {
			resp.Request = req
			return resp, nil
		}
	}
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	start := time.Now()
	resp, err := next.RoundTrip(req)
	if err == nil && resp.Body != nil { // the answer is complete once its body is read
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body, err = io.NopCloser(bytes.NewReader(b)), rerr
	}
	r.mu.Lock()
	r.Elapsed += time.Since(start)
	r.mu.Unlock()
	return resp, err
}

// Count is how many calls of an action were made ("" for all).
func (r *Recorder) Count(action string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if action == "" {
		return len(r.Requests)
	}
	return r.counts[action]
}

// Last is the last recorded request of an action.
func (r *Recorder) Last(action string) (Request, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.Requests) - 1; i >= 0; i-- {
		if r.Requests[i].Action == action {
			return r.Requests[i], true
		}
	}
	return Request{}, false
}

// ErrorResponse is an EC2 error response.
func ErrorResponse(status int, code, msg string) *http.Response {
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>injected</RequestID></Response>`, code, msg)
	return &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header: http.Header{"Content-Type": {"text/xml"}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// XMLResponse is a 200 response with an XML body.
func XMLResponse(body string) *http.Response {
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": {"text/xml"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// VolumesTagged lists the volumes whose tag key has one of the values, as
// EC2 has them (the test fails if it cannot ask).
func (e *Env) VolumesTagged(t testing.TB, key string, values ...string) []types.Volume {
	t.Helper()
	out, err := e.Client.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("tag:" + key), Values: values}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Volumes
}

// SnapshotsTagged lists the snapshots whose tag key has one of the
// values, as EC2 has them.
func (e *Env) SnapshotsTagged(t testing.TB, key string, values ...string) []types.Snapshot {
	t.Helper()
	out, err := e.Client.DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{Filters: []types.Filter{{Name: aws.String("tag:" + key), Values: values}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Snapshots
}
