package ec2

import (
	"context"
	"log/slog"
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

	"github.com/aminator-go/aminator/internal/engine/bake"
	"github.com/aminator-go/aminator/internal/plugin"
	"github.com/aminator-go/aminator/internal/plugin/blockdev"
	ec2cloud "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	"github.com/aminator-go/aminator/internal/plugin/distro/debian"
	"github.com/aminator-go/aminator/internal/plugin/finalizer/instancestore"
	"github.com/aminator-go/aminator/internal/sys/loop"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/ec2test"
)

// A bake in the ec2_apt_linux_s3 environment against moto, in process
// (every plugin real but Locate, as in TestEC2/Bake): the provisioned
// volume is bundled into the bucket and registered from its manifest; the
// bundle restores to the volume's bytes. A bake whose registration fails
// removes its bundle.
func ec2BakeS3(t *testing.T) {
	e := startEC2(t)
	failRegister := false
	rec := &ec2test.Recorder{Inject: func(action string, n int) *http.Response {
		if action == "RegisterImage" && failRegister {
			return ec2test.ErrorResponse(400, "InvalidParameterValue", "injected")
		}
		return nil
	}}
	dir, err := os.MkdirTemp(workDir(), "ec2s3-")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := ec2cloud.Defaults()
	s.PollInterval = 20 * time.Millisecond
	log := slog.New(slog.DiscardHandler)
	cloud, err := ec2cloud.New(ctx, s, "", log, ec2cloud.Option(config.WithHTTPClient(&http.Client{Transport: rec})))
	if err != nil {
		t.Fatal(err)
	}
	admin := s3.NewFromConfig(cloud.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bakes")}); err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(dir, "lock")
	bd := &loopBlockDevice{Linux: &blockdev.Linux{Letters: "fghijklmnop", LockDir: lockDir, Attached: cloud, Dev: "/dev", Sys: "/sys"},
		image: ec2StandIn(t, e, true), dir: dir, devs: map[string]*loop.Device{}, files: map[string]string{}}
	deps := plugin.Deps{Cloud: cloud, BlockDevice: bd, Logger: log, StateDir: dir, LockDir: lockDir}
	set := instancestore.Defaults()
	key, cert := userCert(t)
	set.PrivateKey, set.Cert, set.Account, set.Bucket = key, cert, "123456789012", "bakes"
	env := &bake.Environment{Name: "ec2_apt_linux_s3", Cloud: cloud, StateDir: dir,
		Volume:      testutil.NewPlugin[plugin.Volumes](t, plugin.KindVolume, "linux", nil, deps),
		Distro:      testutil.NewPlugin[plugin.Distro](t, plugin.KindDistro, "debian", debian.Defaults(), deps),
		Provisioner: testutil.NewPlugin[plugin.Provisioner](t, plugin.KindProvisioner, "apt", nil, deps),
		Finalizer:   testutil.NewPlugin[plugin.Finalizer](t, plugin.KindFinalizer, "tagging_s3", set, deps),
	}
	deb := testutil.BuildDeb(t, t.TempDir(), testutil.Deb{Name: "aminator-s3", Version: "1.0-1", Files: map[string]string{"/opt/s3": "on s3\n"}})
	res, err := bake.Run(ctx, env, bake.Request{Package: deb, BaseID: e.BaseID, Suffix: "t", Creator: "ci", VMType: "hvm"}, log)
	if err != nil {
		t.Fatal(err)
	}
	loc := "bakes/aminator-s3-1.0-1-x86_64-t-s3.manifest.xml"
	if res.Image.Name != "aminator-s3-1.0-1-x86_64-t-s3" || res.Image.Tags["s3_bundle"] != loc || res.Image.Tags["appversion"] != "aminator-s3-1.0-1" {
		t.Errorf("image %+v", res.Image)
	}
	r, _ := rec.Last("RegisterImage")
	if form, _ := url.ParseQuery(r.Form); form.Get("ImageLocation") != loc {
		t.Errorf("RegisterImage sent %s", r.Form)
	}
	if len(bd.files) != 1 {
		t.Fatalf("volumes %v", bd.files)
	}
	st := newTestStore(t, e, "bakes")
	doc, err := st.Manifest(ctx, "aminator-s3-1.0-1-x86_64-t-s3")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range bd.files {
		unbundleFile(t, doc, key, st.Opener(), f)
	}

	failRegister = true
	if _, err := bake.Run(ctx, env, bake.Request{Package: deb, BaseID: e.BaseID, Suffix: "fails", Creator: "ci", VMType: "hvm"}, log); err == nil {
		t.Fatal("a bake whose RegisterImage fails succeeded")
	}
	for _, k := range bucketKeys(t, admin, "bakes") {
		if strings.Contains(k, "-fails-") {
			t.Fatalf("the failed bake left %s in the bucket", k)
		}
	}
}
