package instancestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aminator-go/aminator/internal/plugin"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/cloud/fakecloud"
	"github.com/aminator-go/aminator/internal/store/s3bundle"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// identity writes a user's key and certificate as PEM files.
func identity(t *testing.T) (key, cert string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	dir := t.TempDir()
	key, cert = filepath.Join(dir, "pk.pem"), filepath.Join(dir, "cert.pem")
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return key, cert
}

func TestNewRefuses(t *testing.T) {
	if _, err := New(Defaults(), plugin.Deps{Cloud: fakecloud.New()}); err == nil || !strings.Contains(err.Error(), "needs the ec2 cloud") {
		t.Fatalf("on a fake cloud: %v", err)
	}
}

// The finalizer's two steps against moto: the volume's device is bundled
// into the bucket, then an instance-store image is registered from the
// manifest (RegisterImage's request is checked: moto keeps little of
// it); removing the snapshot removes the bundle.
func TestSnapshotRegisterRemove(t *testing.T) {
	ec2test.Start(t)
	rec := &ec2test.Recorder{}
	ctx := context.Background()
	s := ec2cloud.Defaults()
	s.PollInterval = 20 * time.Millisecond
	cloud, err := ec2cloud.New(ctx, s, "", slog.New(slog.DiscardHandler), ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: rec})))
	if err != nil {
		t.Fatal(err)
	}
	admin := s3.NewFromConfig(cloud.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bakery")}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Defaults(), plugin.Deps{Cloud: cloud}); err == nil || !strings.Contains(err.Error(), "set [") {
		t.Fatalf("no settings: %v", err)
	}
	set := Defaults()
	set.PrivateKey, set.Cert = identity(t)
	set.Account, set.Bucket, set.ScratchDir = "123456789012", "bakery/s3", t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := New(set, plugin.Deps{Cloud: cloud, LockDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "vol")
	b := make([]byte, 12<<20)
	rand.Read(b[:11<<20])
	os.WriteFile(disk, b, 0o644)
	img := plugin.ImageRequest{Name: "app-1.0-1-x86_64-t-s3", Architecture: "x86_64", VirtualizationType: "paravirtual",
		KernelID: "aki-12345678", RamdiskID: "ari-12345678", Tags: plugin.Tags{"appversion": "app-1.0-1"}}
	snap, err := f.Snapshot(ctx, plugin.SnapshotVolume{Volume: &plugin.Volume{ID: "vol-1"}, ImageName: img.Name, Image: img, Device: disk})
	if err != nil {
		t.Fatal(err)
	}
	if snap.ID != "bakery/s3/app-1.0-1-x86_64-t-s3.manifest.xml" {
		t.Fatalf("snapshot id %s", snap.ID)
	}
	if ents, _ := os.ReadDir(set.ScratchDir); len(ents) != 0 {
		t.Fatalf("scratch left: %v", ents)
	}
	im, err := f.Register(ctx, plugin.RegisterSnapshot{Snapshot: snap, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := rec.Last("RegisterImage")
	form, _ := url.ParseQuery(req.Form)
	for k, want := range map[string]string{"ImageLocation": snap.ID, "KernelId": "aki-12345678", "RamdiskId": "ari-12345678",
		"RootDeviceName": "/dev/sda1", "BlockDeviceMapping.4.DeviceName": "/dev/sde", "BlockDeviceMapping.4.VirtualName": "ephemeral3"} {
		if form.Get(k) != want {
			t.Errorf("RegisterImage %s=%q, want %q (%v)", k, form.Get(k), want, form)
		}
	}
	if im.Tags["s3_bundle"] != snap.ID || im.Tags["appversion"] != "app-1.0-1" {
		t.Errorf("image tags %v", im.Tags)
	}
	st := bundleStore(t, cloud, "bakery/s3")
	doc, err := st.Manifest(ctx, "app-1.0-1-x86_64-t-s3")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s3bundle.ParseManifest(doc)
	if err != nil || m.KernelID != "aki-12345678" || m.BlockDevices["ephemeral0"] != "sdb" || m.BlockDevices["ami"] != "sda1" || len(m.Parts) != 2 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	keyNotLeaked(t, set.PrivateKey, logs.String(), rec, set.ScratchDir)
	if err := f.RemoveSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	out, _ := admin.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bakery")})
	if len(out.Contents) != 0 {
		t.Fatalf("RemoveSnapshot left %d objects", len(out.Contents))
	}
}

// keyNotLeaked checks that no line of the private key's PEM body is in the
// logs, in any request sent, or in the scratch directory.
func keyNotLeaked(t *testing.T, keyFile, logs string, rec *ec2test.Recorder, scratch string) {
	t.Helper()
	pemText, _ := os.ReadFile(keyFile)
	if !strings.Contains(logs, "bundle uploaded") {
		t.Fatalf("the finalizer logged nothing: %s", logs)
	}
	var sent strings.Builder
	for _, r := range rec.Requests {
		sent.WriteString(r.Form)
	}
	for _, line := range strings.Split(string(pemText), "\n")[1:4] {
		if strings.Contains(logs, line) || strings.Contains(sent.String(), line) {
			t.Fatal("the private key went into the logs or a request")
		}
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Fatalf("scratch holds %v", ents)
	}
}
