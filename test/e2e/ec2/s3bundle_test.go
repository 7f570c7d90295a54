package ec2

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/cloud/local"
	"github.com/aminator-go/aminator/internal/store/bundlestore"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// userCert makes the user's key and certificate with openssl, as the EC2
// AMI tools' users do.
func userCert(t *testing.T) (key, cert string) {
	t.Helper()
	dir := t.TempDir()
	key, cert = filepath.Join(dir, "pk.pem"), filepath.Join(dir, "cert.pem")
	b, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
		"-subj", "/CN=aminator e2e", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v: %s", err, b)
	}
	return key, cert
}

// rawDisk restores an image's root disk from a state directory to a file.
func rawDisk(t *testing.T, state, id string) string {
	t.Helper()
	c, err := local.Open(local.Options{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	im, err := c.Image(context.Background(), plugin.ImageQuery{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := c.Store().Restore(context.Background(), im.Root().SnapshotID, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// unbundleFile restores a bundle with the user's key and compares it with want.
func unbundleFile(t *testing.T, manifest []byte, keyPath string, open s3bundle.Opener, want string) {
	t.Helper()
	key, err := s3bundle.LoadPrivateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "restored.img")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s3bundle.Unbundle(context.Background(), manifest, key, open, f); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("cmp", want, out).CombinedOutput(); err != nil {
		t.Fatalf("the unbundled disk is not the image's: %v %s", err, b)
	}
}

// aminate bundle writes a local image as an S3 bundle that restores to
// the image's exact disk; a key that is not the certificate's is refused
// and leaves nothing.
func TestBundleCommand(t *testing.T) {
	c := isolated(t)
	id := mustOK(t, c.Aminate(t, "images", "import", "--role", "base", "bundle-base", testutil.DebianBase(t)))
	key, cert := userCert(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	out := mustOK(t, c.Aminate(t, "bundle", id, "--cert", cert, "--privatekey", key, "--account", "123456789012",
		"-d", dir, "--output", "json"))
	var res struct {
		Manifest string          `json:"manifest"`
		Parts    []s3bundle.Part `json:"parts"`
		Size     int64           `json:"size"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Manifest != filepath.Join(dir, "bundle-base.manifest.xml") || len(res.Parts) == 0 {
		t.Fatalf("bundle output %s", out)
	}
	doc, err := os.ReadFile(res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	unbundleFile(t, doc, key, s3bundle.DirOpener(dir), rawDisk(t, c.State, id))

	otherKey, _ := userCert(t)
	bad := filepath.Join(t.TempDir(), "bad")
	r := c.Aminate(t, "bundle", id, "--cert", cert, "--privatekey", otherKey, "--account", "123456789012", "-d", bad)
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not belong to the certificate") {
		t.Fatalf("a foreign key: exit %d, %s", r.Code, r.Stderr)
	}
	if ents, _ := os.ReadDir(bad); len(ents) != 0 {
		t.Fatalf("a refused bundle left %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.State, "tmp")); len(ents) != 0 {
		t.Fatalf("the bundle left %v in the state directory", ents)
	}
}

func newTestStore(t *testing.T, e *ec2test.Env, loc string) *bundlestore.Store {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := bundlestore.New(cfg, loc, bundlestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
